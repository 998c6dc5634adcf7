"""``polypwatch commission-protocol`` (the lab): the pre-registered commissioning protocol on the shared sources
(docs/EXPERIMENTS.md, "Session 17"). A fold model that never saw the site is commissioned on part of the site's
polyp-free footage and scored on the rest and on all of the site's polyp frames, before and after."""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

from engines.errors import ConfigError, PolypwatchError

SITES = ("polypgen-A-hd", "polypgen-A-sd", "polypgen-B", "polypgen-B-full", "polypgen-B-panel", "kvasir")
# Each centre's polyp-free sequences come from two towers (docs/EXPERIMENTS.md, session 17 amendments): PolypGen-A
# seq1-3 960x540 and seq4-7 720x576; PolypGen-B seq8-10 the whole frame and seq11-15 a screen with the picture at right
TOWERS = {"polypgen-A-hd": ("seq1_neg", "seq2_neg", "seq3_neg"),
          "polypgen-A-sd": ("seq4_neg", "seq5_neg", "seq6_neg", "seq7_neg"),
          "polypgen-B-full": ("seq8_neg", "seq9_neg", "seq10_neg"),
          "polypgen-B-panel": ("seq11_neg", "seq12_neg", "seq14_neg", "seq15_neg")}


def _images(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
                  key=lambda p: (len(p.stem), p.stem))


def site_footage(root: Path, site: str, work: Path) -> tuple[list[Path], list[Path]]:
    """(the site's polyp-free recordings in the protocol's order, its polyp frames)."""
    if site.startswith("polypgen-"):
        base = root / "polypgen-ab" / f"centre_{site[9]}"
        seqs = sorted((d for d in (base / "negative").iterdir() if d.is_dir()), key=lambda d: int(re.sub(r"\D", "", d.name)))
        if site in TOWERS:
            seqs = [d for d in seqs if d.name in TOWERS[site]]
        return seqs, _images(base / "positive")
    if site == "kvasir":
        frames = _images(root / "kvasir-normal" / "images")
        order = np.random.default_rng(0).permutation(len(frames))
        recs = []
        for k in range(8):                         # 8 pseudo-recordings of 100: halves are recordings 0-3 and 4-7
            d = work / "kvasir-normal" / f"part{k}"
            d.mkdir(parents=True, exist_ok=True)
            for i in order[k * 100:(k + 1) * 100]:
                link = d / frames[i].name
                if not link.exists():
                    link.symlink_to(frames[i].resolve())
            recs.append(d)
        return recs, _images(root / "kvasir-seg" / "images")
    raise ConfigError(f"--site: expected one of {SITES}, got {site!r}")


def split_of(recs: list[Path], site: str, split: int) -> tuple[list[Path], list[Path]]:
    if site == "kvasir":
        a, b = recs[:4], recs[4:]
    elif len(recs) == 3:                          # three sequences: commission on two, test on the third
        a, b = ([recs[0], recs[2]], [recs[1]]) if split == 1 else ([recs[1], recs[2]], [recs[0]])
        return a, b
    else:
        a, b = recs[0::2], recs[1::2]
    return (a, b) if split == 1 else (b, a)


def _score(net, spec, files: list[Path]) -> np.ndarray:
    import cv2

    from engines.lab.site.commission import scores, trunk
    from engines.runtime.preprocess import preprocess
    out = []
    for i in range(0, len(files), 64):
        x = np.stack([preprocess(cv2.imread(str(f)), spec).tensor[0] for f in files[i:i + 64]])
        out.append(scores(net, trunk(net, x)))
    return np.concatenate(out)


def evaluate(net, meta, threshold: float, test: list[Path], positives: list[Path], alerts) -> dict:
    from engines.lab.evaluation.metrics import auroc
    from engines.lab.site.operating import footage_figures
    neg_by_rec = [_score(net, meta.preprocess, _images(r)) for r in test]
    neg, pos = np.concatenate(neg_by_rec), _score(net, meta.preprocess, positives)
    minutes = [len(s) / 25.0 / 60 for s in neg_by_rec]
    fig = footage_figures(neg_by_rec, minutes, threshold, alerts)
    y = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
    return {"threshold": round(threshold, 4), "auroc": round(float(auroc(y, np.r_[neg, pos])), 4),
            "sensitivity": round(float((pos >= threshold).mean()), 4),
            "specificity": round(float((neg < threshold).mean()), 4), "negatives": int(len(neg)),
            "positives": int(len(pos)), "episodes_per_minute": fig["episodes_per_minute"]}


def run_split(model: Path, root: Path, site: str, split: int, out: Path) -> dict:
    from engines.lab.site.adapt import AdaptOptions, adapt
    from engines.lab.site.model import load_model
    from engines.runtime.alerts import AlertsConfig
    recs, positives = site_footage(root, site, out / "footage")
    comm, test = split_of(recs, site, split)
    opts = AdaptOptions(site=f"{site.lower()}-s{split}", min_frames=50, include_set_aside=True)
    target = out / f"{site}-split{split}.onnx"
    for p in out.glob(f"{site}-split{split}.*"):
        p.unlink()
    t0 = time.monotonic()
    stock, meta = load_model(model)
    alerts = AlertsConfig()
    row = {"site": site, "split": split, "commissioned_on": [r.name for r in comm], "tested_on": [r.name for r in test]}
    try:
        report = adapt(model, [str(r) for r in comm], opts, target)
    except PolypwatchError as e:                 # a refusal is a result: commissioning said no for this footage
        row.update(refused=str(e), commission_wall_s=round(time.monotonic() - t0, 1),
                   before=evaluate(stock, meta, meta.threshold, test, positives, alerts))
        row["conditions"] = {"commissioned": False}
        return row
    wall = time.monotonic() - t0
    tuned, tmeta = load_model(target)
    keep = ("stock", "threshold_only", "commissioned_held_out", "commissioned_check_positives_sensitivity", "set_aside")
    row.update(commission_wall_s=round(wall, 1), site_threshold=tmeta.threshold,
               before=evaluate(stock, meta, meta.threshold, test, positives, alerts),
               after=evaluate(tuned, tmeta, tmeta.threshold, test, positives, alerts),
               commission_report={k: report[k] for k in keep})
    only = report.get("threshold_only")
    row["threshold_only"] = evaluate(stock, meta, only["threshold"], test, positives, alerts) if only else None
    a, b = row["after"], row["before"]
    row["conditions"] = {"specificity >= 0.95": a["specificity"] >= 0.95, "sensitivity >= 0.85": a["sensitivity"] >= 0.85,
                         "sensitivity >= stock's": a["sensitivity"] >= b["sensitivity"]}
    return row


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--model", required=True, help="the fold model that never saw --site (its .pt and kit beside it)")
    ap.add_argument("--site", required=True, choices=SITES)
    ap.add_argument("--data-root", required=True, metavar="DIR")
    ap.add_argument("--splits", nargs="+", type=int, default=[1, 2], choices=[1, 2])
    ap.add_argument("--out", required=True, help="folder for the site models and protocol.json")


def run(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in args.splits:
        rows.append(run_split(Path(args.model), Path(args.data_root), args.site, s, out))
        (out / f"protocol-{args.site}.json").write_text(json.dumps(rows, indent=1) + "\n")
    for r in rows:
        if "refused" in r:
            print(f"{r['site']} split {r['split']}: commissioning REFUSED: {r['refused']} | before {r['before']}")
            continue
        b, a, t = r["before"], r["after"], r["threshold_only"] or {}
        print(f"{r['site']} split {r['split']}: before t={b['threshold']} AUROC {b['auroc']} sens {b['sensitivity']} "
              f"spec {b['specificity']} ep/min {b['episodes_per_minute']} | threshold only t={t.get('threshold')} "
              f"sens {t.get('sensitivity')} spec {t.get('specificity')} | after t={a['threshold']} AUROC {a['auroc']} "
              f"sens {a['sensitivity']} spec {a['specificity']} ep/min {a['episodes_per_minute']} | "
              f"{r['commission_wall_s']} s | {r['conditions']}")
    return 0
