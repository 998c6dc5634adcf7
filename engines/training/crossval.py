"""tools/crossval: leave-one-source-out. For each source: train on all the others (tools/train --data-root
--holdout-source), then score the left-out source against its own negatives and polyp-free views plus the unseen
normals. The table is the honest estimate of how a new hospital will fare.

Resumable: a source whose ``OUT/<source>/eval.json`` exists is skipped; an interrupted training continues from
its ``last.pt``. Options after ``--`` (or any not listed here) go to tools/train unchanged.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from engines.errors import PolypwatchError

log = logging.getLogger("crossval")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="crossval", description=__doc__.split("\n\n")[0],
                                 epilog="Any other option is passed to tools/train (see tools/train --help).")
    ap.add_argument("--data-root", required=True, metavar="DIR", help="folder laid out like ../shared/data")
    ap.add_argument("--out", required=True, help="one sub-folder per left-out source, plus crossval.json/table.md")
    ap.add_argument("--sources", nargs="+", default=None, metavar="NAME", help="leave out only these (default: each)")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads for scoring")
    return ap


def run(args, train_args: list[str]) -> dict:
    from engines.data.sources import SOURCES, check_holdout, load_sources
    from engines.evaluation.protocol import evaluate_protocol
    from engines.runtime.metadata import read_onnx_metadata
    from engines.training import cli as train_cli
    names = [check_holdout(n) for n in (args.sources or SOURCES)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sources = load_sources(args.data_root)
    rows = {}
    for name in names:
        fold = out / name
        done = fold / "eval.json"
        if done.is_file():
            log.info("%s: done already (%s)", name, done)
            rows[name] = json.loads(done.read_text())
            continue
        if not (fold / "model.onnx").is_file():
            targs = train_cli.build_parser().parse_args(
                ["--data-root", args.data_root, "--holdout-source", name, "--out", str(fold), "--resume",
                 "--model-id", f"loso-without-{name}", *train_args])
            train_cli.run(targs)
        meta = read_onnx_metadata(fold / "model.onnx")
        m, _ = evaluate_protocol(fold / "model.onnx", sources, meta.threshold, "external", [name],
                                 synthetic_negatives=0, threads=args.threads)
        row = {"source": name, "model": meta.model_id, **m["sources"][name],
               "tower_test": m["tower_test"], "unseen_normals": m["unseen_normals"]}
        done.write_text(json.dumps(row, indent=1))
        rows[name] = row
    (out / "crossval.json").write_text(json.dumps(rows, indent=1))
    (out / "table.md").write_text(table(rows) + "\n")
    return rows


def table(rows: dict) -> str:
    f = lambda v, d=3: "–" if v is None else f"{v:.{d}f}"  # noqa: E731
    lines = ["| left out | frames (pos) | AUROC | sens @95% spec | own negatives only: AUROC / sens @95% spec | "
             "sens / spec @ its threshold | sequences | box IoU median | corner painted: sens change | "
             "tower-style spec |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        seq = f"{r['sequences_detected']}/{r['sequences_total']}" if r["sequences_total"] else "–"
        own = r.get("per_dataset", {}).get(name, {})
        sc = r.get("shortcut", {}).get("sensitivity_change_points")
        lines.append(f"| {name} | {r['count']} ({r['positives']}) | {f(r['auroc'])} | "
                     f"{f(r['sensitivity_at_95_specificity'])} | {f(own.get('auroc'))} / "
                     f"{f(own.get('sensitivity_at_95_specificity'))} | {f(r['sensitivity'])} / {f(r['specificity'])} | "
                     f"{seq} | {f(r['iou']['median'])} | {f(sc, 2)} | {f(r['tower_test']['specificity'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, rest = build_parser().parse_known_args(argv)
    rest = [a for a in rest if a != "--"]
    try:
        rows = run(args, rest)
    except PolypwatchError as e:
        print(f"crossval: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"crossval: {e}", file=sys.stderr)
        return 2
    print(table(rows))
    return 0
