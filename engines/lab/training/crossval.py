"""tools/crossval: leave-one-source-out. For each source: train on all the others (tools/train --data-root
--holdout-source), then score the left-out source against its own negatives and polyp-free views plus the unseen
normals. The table is the honest estimate of how a new hospital will fare.

Every fold trains the same recipe (``--recipe``, ``--set`` as for tools/train), with the source left out and the
model id ``loso-without-<source>``. Resumable: a source whose ``OUT/<source>/eval.json`` exists is skipped; an
interrupted training continues from its ``last.pt``.

Run-to-run spread on one fold is about 0.03 AUROC, as large as most remedies: ``--seeds 0 1 2`` trains every fold
once per seed (``OUT/<source>/seed<N>``) and adds a table of the mean and standard deviation per source.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
from pathlib import Path

from engines.errors import ConfigError

log = logging.getLogger("crossval")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--recipe", required=True, metavar="FILE", help="the training recipe of every fold (data: protocol)")
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                    help="change one recipe key for every fold (repeatable)")
    ap.add_argument("--data-root", required=True, metavar="DIR", help="folder laid out like ../shared/data")
    ap.add_argument("--out", required=True, help="one sub-folder per left-out source, plus crossval.json/table.md")
    ap.add_argument("--sources", nargs="+", default=None, metavar="NAME", help="leave out only these (default: each)")
    ap.add_argument("--seeds", nargs="+", type=int, default=None, metavar="N",
                    help="train every fold once per seed (OUT/<source>/seed<N>) and report mean and spread per source")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads for scoring")
    ap.add_argument("--workers", type=int, default=2, help="processes that render training frames")
    ap.add_argument("--cache", default="", metavar="DIR", help="cache of preprocessed arrays (as for tools/train)")


def _folds(names: list[str], seeds: list[int] | None, out: Path) -> list[tuple[str, str, Path, int | None]]:
    """(row key, source, folder, seed or None for tools/train's own) for every run of the grid."""
    if seeds is None:
        return [(n, n, out / n, None) for n in names]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds: expected distinct seeds, got {seeds}")
    return [(f"{n}/seed{s}", n, out / n / f"seed{s}", s) for n in names for s in seeds]


def run_folds(args) -> dict:
    """Every fold (and seed) of the grid: trained through a TrainJob each (resumable), then scored."""
    from engines.lab.data.sources import check_holdout, load_sources
    from engines.lab.evaluation.protocol import evaluate_protocol
    from engines.runtime.metadata import read_onnx_metadata
    from engines.lab.training.job import TrainJob
    from engines.lab.training.recipe import load_recipe, parse_set
    from engines.lab.training.run import run as train
    recipe = load_recipe(args.recipe, args.overrides)
    names = [check_holdout(n) for n in (args.sources or recipe.sources)]
    if any(n not in recipe.sources for n in names):
        raise ConfigError(f"--sources: {names} are not all among the recipe's sources {list(recipe.sources)}")
    if args.seeds is not None and any(parse_set(t)[0] == "seed" for t in args.overrides):
        raise ConfigError("--set seed=...: not with --seeds (each fold is trained once per seed of --seeds)")
    if recipe.data != "protocol":
        raise ConfigError(f"--recipe {args.recipe}: leave-one-source-out needs a protocol recipe (data: protocol)")
    out = Path(args.out)
    folds = _folds(names, args.seeds, out)
    out.mkdir(parents=True, exist_ok=True)
    sources = load_sources(args.data_root, recipe.sources)
    rows = {}
    for key, name, fold, seed in folds:
        done = fold / "eval.json"
        if done.is_file():
            log.info("%s: done already (%s)", key, done)
            rows[key] = json.loads(done.read_text())
            continue
        if not (fold / "model.onnx").is_file():
            sets = [*args.overrides, f"model_id=loso-without-{name}", *([] if seed is None else [f"seed={seed}"])]
            train(TrainJob.from_recipe_file(args.recipe, sets, out=fold, data_root=args.data_root,
                                            holdout_source=name, resume=True, workers=args.workers,
                                            cache=args.cache))
        meta = read_onnx_metadata(fold / "model.onnx")
        m, _ = evaluate_protocol(fold / "model.onnx", sources, meta.threshold, "external", [name],
                                 synthetic_negatives=0, threads=args.threads)
        row = {"source": name, "model": meta.model_id, **m["sources"][name],
               "tower_test": m["tower_test"], "unseen_normals": m["unseen_normals"]}
        if seed is not None:
            row["seed"] = seed
        done.write_text(json.dumps(row, indent=1))
        rows[key] = row
    (out / "crossval.json").write_text(json.dumps(rows, indent=1))
    text = table(rows)
    if args.seeds is not None:
        text += "\n\n" + spread_table(rows)
    (out / "table.md").write_text(text + "\n")
    return rows


def table(rows: dict) -> str:
    from engines.lab.evaluation.protocol import fmt as _fmt
    lines = [("| left out | frames (pos) | AUROC | sens @95% spec | own negatives only: AUROC / sens @95% spec | "
              "sens / spec @ its threshold | sequences | box IoU median | corner painted: sens change | "
              "message box: sens change | centre A's warning: sens change | tower-style spec |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        seq = f"{r['sequences_detected']}/{r['sequences_total']}" if r["sequences_total"] else "–"
        own = r.get("per_dataset", {}).get(r["source"], {})
        sc = r.get("shortcut", {}).get("sensitivity_change_points")
        mb = r.get("message_box", {}).get("sensitivity_change_points")
        wa = r.get("centre_a_warning", {}).get("sensitivity_change_points")
        lines.append(f"| {name} | {r['count']} ({r['positives']}) | {_fmt(r['auroc'])} | "
                     f"{_fmt(r['sensitivity_at_95_specificity'])} | {_fmt(own.get('auroc'))} / "
                     f"{_fmt(own.get('sensitivity_at_95_specificity'))} | {_fmt(r['sensitivity'])} / {_fmt(r['specificity'])} | "
                     f"{seq} | {_fmt(r['iou']['median'])} | {_fmt(sc, 2)} | {_fmt(mb, 2)} | {_fmt(wa, 2)} | "
                     f"{_fmt(r['tower_test']['specificity'])} |")
    return "\n".join(lines)


_SPREAD = (("AUROC", lambda r: r["auroc"]),
           ("sens @95% spec", lambda r: r["sensitivity_at_95_specificity"]),
           ("spec @ its threshold", lambda r: r["specificity"]),
           ("tower-style spec", lambda r: r["tower_test"]["specificity"]))


def spread_table(rows: dict) -> str:
    """Per left-out source: mean ± sample standard deviation over the seeds (± – with one seed)."""
    by_source: dict[str, list[dict]] = {}
    for r in rows.values():
        by_source.setdefault(r["source"], []).append(r)
    lines = ["| left out | seeds | " + " | ".join(name for name, _ in _SPREAD) + " |",
             "|---|---|" + "---|" * len(_SPREAD)]
    for source, runs in by_source.items():
        cells = []
        for _, get in _SPREAD:
            vals = [get(r) for r in runs if get(r) is not None]
            if not vals:
                cells.append("–")
                continue
            sd = f"{statistics.stdev(vals):.3f}" if len(vals) > 1 else "–"
            cells.append(f"{statistics.fmean(vals):.3f} ± {sd}")
        seeds = ", ".join(str(r.get("seed", "?")) for r in runs)
        lines.append(f"| {source} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args) -> int:
    print(table(run_folds(args)))
    return 0
