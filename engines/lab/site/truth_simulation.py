"""``polypwatch site-truth-sim`` (the lab): the site's-truth loop of issue 49 simulated on the shared data, by the
protocol written before anything was scored (docs/EXPERIMENTS.md, "Session 21").

A site's sequences are its procedures, in a fixed order. Round k commissions a fold model that never saw the site on
the first k procedures, twice: from their polyp-free footage only (today's commissioning, session 17's settings) and
from the same footage with the procedures' reviewed polyps (every polyp frame of the procedure answered "polyp", as
review of its alert episodes and marks would give; the reviewer's box where the data has a mask). Both, and the fold
model itself at its own threshold, are tested on the procedures not yet used: sensitivity and specificity at the
site threshold, false-alarm episodes per minute (an exact 95% interval), sensitivity at 95% specificity of the test
frames (the ranking, whatever threshold the rule picks), AUROC and polyp cases found.

The frozen part of the network (its trunk) is the same in every model of a round, so each procedure's frames pass it
once per fold model and are scored by each model's head.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.errors import ConfigError, PolypwatchError
from engines.lab.site.positives import Positive
from engines.lab.site.truth_simulation_report import table, verdict

SITES = ("polypgen-A-sd", "polypgen-B-panel", "cvc-colondb")
ROUNDS = {"polypgen-A-sd": (2, 3), "polypgen-B-panel": (2, 3), "cvc-colondb": (3, 6, 9, 12)}
FPS = 25.0                      # a folder of frames plays at this rate (as commissioning reads it)
CASE_FRAMES = 10                # PolypGen's single polyp frames: a case is a run of 10 by number
FRAME_SIZE = (574, 500)         # CVC-ColonDB's frame size: its mined polyp-free views are written at it
CONDITIONS = ("footage_only", "with_site_polyps")


@dataclass(frozen=True)
class Procedure:
    """One simulated procedure: its polyp-free footage (a folder of frames in order) and its polyps."""
    name: str
    footage: Path
    polyps: tuple[Positive, ...]               # whole frames, reviewed "polyp" (box from the mask where there is one)
    zoomed: tuple[Path, ...] = ()              # zoomed views of its polyp (CVC): the framing check, never trained on


@dataclass(frozen=True)
class Features:
    """A procedure's frames through the fold model's frozen trunk (stride-16 feature maps)."""
    footage: np.ndarray
    polyps: np.ndarray
    cases: tuple[str, ...]
    zoomed: np.ndarray


def _number(p: Path) -> int:
    return int(re.sub(r"\D", "", p.stem) or 0)


def _mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    h, w = mask.shape[:2]
    return (float(xs.min() / w), float(ys.min() / h), float((xs.max() + 1) / w), float((ys.max() + 1) / h))


def _polypgen(root: Path, site: str, work: Path) -> list[Procedure]:
    """The tower's polyp-free sequences in number order; the centre's polyp frames (single frames, no masks, no
    sequence) by number in as many contiguous blocks, one per procedure, in cases of CASE_FRAMES."""
    from engines.lab.site.protocol import site_footage
    seqs, positives = site_footage(root, site, work)
    positives = sorted(positives, key=_number)
    out = []
    for seq, block in zip(seqs, np.array_split(np.arange(len(positives)), len(seqs))):
        polyps = tuple(Positive(seq.name, f"{seq.name}-case{j // CASE_FRAMES}", positives[i], None,
                                (j % CASE_FRAMES) / FPS) for j, i in enumerate(block))
        out.append(Procedure(seq.name, seq, polyps))
    return out


def _cvc(root: Path, work: Path) -> list[Procedure]:
    """The 15 sequences in number order. Footage: each frame's two mined polyp-free views (the protocol's), written at
    the frame size in frame order; polyps: every frame (one polyp per sequence, its box from the mask); the framing
    check: one zoomed view of the polyp per frame."""
    from engines.lab.data.datasets import read_mask
    from engines.lab.data.frames import read_sample
    from engines.lab.data.sources import load_sources, mined_views
    samples = load_sources(root, ("cvc-colondb",))["cvc-colondb"].all()
    out = []
    for group in sorted({s.group for s in samples}, key=int):
        frames = sorted((s for s in samples if s.group == group), key=lambda s: _number(s.image))
        name = f"seq{group}"
        views = mined_views(frames, per_frame=2, zoomed_positives=1, seed=0)
        folders = {0: work / "cvc-colondb" / name, 1: work / "cvc-colondb" / f"{name}-zoomed"}
        written: dict[int, list[Path]] = {0: [], 1: []}
        for d in folders.values():
            d.mkdir(parents=True, exist_ok=True)
        for v in views:
            img, _ = read_sample(v)
            f = folders[v.label] / f"{len(written[v.label]):04d}.png"
            cv2.imwrite(str(f), cv2.resize(img, FRAME_SIZE, interpolation=cv2.INTER_AREA))
            written[v.label].append(f)
        polyps = []
        for j, s in enumerate(frames):
            img = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
            polyps.append(Positive(name, f"{name}-polyp", s.image, _mask_box(read_mask(s.mask, img.shape[:2])), j / FPS))
        out.append(Procedure(name, folders[0], tuple(polyps), tuple(written[1])))
    return out


def procedures(root: Path, site: str, work: Path) -> list[Procedure]:
    if site not in SITES:
        raise ConfigError(f"--site: expected one of {SITES}, got {site!r}")
    return _cvc(root, work) if site == "cvc-colondb" else _polypgen(root, site, work)


def _trunk_of(net, meta, files) -> np.ndarray:
    from engines.lab.site.commission import trunk
    from engines.runtime.preprocess import preprocess
    out = []
    for i in range(0, len(files), 64):
        x = np.stack([preprocess(cv2.imread(str(f), cv2.IMREAD_COLOR), meta.preprocess).tensor[0]
                      for f in files[i:i + 64]])
        out.append(trunk(net, x))
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def features(net, meta, proc: Procedure) -> Features:
    from engines.lab.site.footage import _frame_files
    return Features(_trunk_of(net, meta, _frame_files(proc.footage)), _trunk_of(net, meta, [p.image for p in proc.polyps]),
                    tuple(p.case for p in proc.polyps), _trunk_of(net, meta, list(proc.zoomed)))


def held_out_figures(net, threshold: float, test: list[Features], alerts) -> dict:
    """The procedures not yet used, scored by ``net`` at ``threshold``."""
    from engines.lab.evaluation.metrics import auroc
    from engines.lab.site.commission import scores
    from engines.lab.site.operating import footage_figures
    from engines.lab.site.rates import poisson_interval
    neg_by = [scores(net, f.footage) for f in test]
    neg = np.concatenate(neg_by)
    pos = np.concatenate([scores(net, f.polyps) for f in test])
    cases = [c for f in test for c in f.cases]
    minutes = [len(s) / FPS / 60 for s in neg_by]
    fig = footage_figures(neg_by, minutes, threshold, alerts)
    t95 = float(np.sort(neg)[int(np.ceil(0.95 * len(neg))) - 1])      # the highest score 95% of test frames reach
    zoomed = [f.zoomed for f in test if len(f.zoomed)]
    zs = scores(net, np.concatenate(zoomed)) if zoomed else np.zeros(0)
    found = {c for c, s in zip(cases, pos) if s >= threshold}
    return {"threshold": round(float(threshold), 4),
            "auroc": round(float(auroc(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos])), 4),
            "sensitivity": round(float((pos >= threshold).mean()), 4),
            "specificity": round(float((neg < threshold).mean()), 4),
            "sensitivity_at_test_specificity_95": round(float((pos > t95).mean()), 4),
            "cases": len(set(cases)), "cases_found": len(found),
            "episodes": fig["episodes"], "minutes": round(sum(minutes), 3),
            "episodes_per_minute_ci95": [round(v, 3) for v in poisson_interval(fig["episodes"], sum(minutes))],
            "zoomed_sensitivity": round(float((zs >= threshold).mean()), 4) if len(zs) else None,
            "negatives": int(len(neg)), "positives": int(len(pos))}


def run_round(model: Path, site: str, procs: list[Procedure], feats: dict[str, Features], k: int, stock, meta,
              finetune=None) -> dict:
    """Round ``k``: commission on procedures 1..k both ways (``finetune``: the protocol's FinetuneConfig() unless
    given) and score the rest."""
    from engines.lab.site.adapt import AdaptOptions, commission
    from engines.lab.site.commission import FinetuneConfig
    from engines.runtime.alerts import AlertsConfig
    used, test = procs[:k], procs[k:]
    alerts = AlertsConfig()
    tf = [feats[p.name] for p in test]
    row = {"site": site, "round": k, "commissioned_on": [p.name for p in used], "tested_on": [p.name for p in test],
           "stock": held_out_figures(stock, meta.threshold, tf, alerts)}
    opts = AdaptOptions(site=f"{site.lower()}-r{k}", min_frames=50, include_set_aside=True, alerts=alerts,
                        finetune=finetune or FinetuneConfig())
    for cond in CONDITIONS:
        positives = [q for p in used for q in p.polyps] if cond == "with_site_polyps" else None
        t0 = time.monotonic()
        try:
            c = commission(model, [str(p.footage) for p in used], opts, positives)
        except PolypwatchError as e:            # a refusal is a result: commissioning said no
            row[cond] = {"refused": str(e), "wall_s": round(time.monotonic() - t0, 1)}
            continue
        t = c.report["site_threshold"]
        row[cond] = {"site_threshold": t, "wall_s": round(time.monotonic() - t0, 1),
                     "held_out": c.report["commissioned_held_out"], "site_polyps_held_out": c.report.get("site_polyps"),
                     "kit_check_sensitivity": c.report["commissioned_check_positives_sensitivity"],
                     "test": held_out_figures(c.net, t, tf, alerts)}
    return row


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--model", required=True, help="the fold model that never saw --site (its .pt and kit beside it)")
    ap.add_argument("--site", required=True, choices=SITES)
    ap.add_argument("--data-root", required=True, metavar="DIR")
    ap.add_argument("--rounds", nargs="+", type=int, help="procedures commissioned on, per round (default: the "
                                                          "protocol's for the site)")
    ap.add_argument("--out", required=True, help="folder for the generated footage and sim-SITE.json")


def run(args) -> int:
    from engines.lab.site.model import load_model
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    procs = procedures(Path(args.data_root), args.site, out / "footage")
    rounds = args.rounds or ROUNDS[args.site]
    bad = [k for k in rounds if not 2 <= k < len(procs)]
    if bad:
        raise ConfigError(f"--rounds: expected procedure counts from 2 to {len(procs) - 1} (one is left to test on), "
                          f"got {bad}")
    stock, meta = load_model(Path(args.model))
    feats = {p.name: features(stock, meta, p) for p in procs}
    rows = []
    target = out / f"sim-{args.site}.json"
    for k in rounds:
        rows.append(run_round(Path(args.model), args.site, procs, feats, k, stock, meta))
        target.write_text(json.dumps({"model": str(args.model), "site": args.site, "rows": rows}, indent=1) + "\n")
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    print(f"reviewed polyps lift sensitivity at specificity >= 0.95 at {args.site}: {verdict(rows)}")
    return 0

