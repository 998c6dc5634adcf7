"""``polypwatch train`` (tools/train): run a training recipe (configs/train/<model-id>.yaml), choose the operating
threshold, export ONNX with metadata. The options become a ``TrainJob``; engines.lab.training.run does the work."""
from __future__ import annotations

import argparse

from engines.errors import ConfigError
from engines.lab.training.job import TrainJob


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--recipe", metavar="FILE",
                    help="training recipe (YAML, every key in engines/lab/training/recipe.py); default: every key at its "
                         "default (folder datasets)")
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                    help="change one recipe key, e.g. --set seed=1 (repeatable)")
    ap.add_argument("--data-root", metavar="DIR",
                    help="folder laid out like ../shared/data: the sources of a protocol recipe, and where a folder "
                         "recipe's datasets and negatives lie")
    ap.add_argument("--holdout-source", default="", metavar="NAME",
                    help="protocol recipes: leave this source out entirely (leave-one-source-out)")
    ap.add_argument("--dataset", action="append", default=[], metavar="DIR",
                    help="a dataset folder, in place of the recipe's datasets (repeatable); its split lists are used "
                         "where it has them (train.txt/val.txt), else the recipe's val_fraction")
    ap.add_argument("--negatives", action="append", default=[], metavar="DIR",
                    help="a folder of frames with no polyp, in place of the recipe's negatives (repeatable)")
    ap.add_argument("--out", required=True, help="output folder: best.pt, model.onnx, model.pt, metrics.json, PNGs")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT/last.pt (same recipe)")
    ap.add_argument("--epochs-now", type=int, default=0, metavar="N",
                    help="train at most N epochs in this invocation, then stop (continue later with --resume)")
    ap.add_argument("--workers", type=int, default=2, help="processes that render and preprocess training frames")
    ap.add_argument("--cache", default="", metavar="DIR",
                    help="cache the preprocessed arrays here (reused by later runs over the same frames and input)")


def run(args) -> int:
    from engines.lab.training.run import run as run_job
    from engines.lab.training.train import Paused
    job = TrainJob.from_recipe_file(args.recipe, args.overrides, out=args.out, data_root=args.data_root or "",
                                    holdout_source=args.holdout_source, dataset=args.dataset,
                                    negatives=args.negatives, resume=args.resume, epochs_now=args.epochs_now,
                                    workers=args.workers, cache=args.cache)
    try:
        m = run_job(job)
    except Paused as e:
        print(f"train: {e}")
        return 0
    except ValueError as e:                 # the training loop's own check of its settings
        raise ConfigError(str(e)) from None
    if "val_accuracy" in m:
        print(f"validation accuracy {m['val_accuracy']:.4f} over {len(m['classes'])} classes; per-class recall "
              f"{ {k: (None if v is None else round(v, 3)) for k, v in m['per_class_recall'].items()} }")
    if m.get("val_auroc") is not None:
        print(f"validation AUROC {m['val_auroc']:.4f}; at threshold {m['threshold']:.3f}: sensitivity "
              f"{m['val_sensitivity']:.3f}, specificity {m['val_specificity']:.3f}")
    print(f"ONNX parity {m['onnx_max_abs_diff']:.1e}; outputs in {args.out}")
    return 0
