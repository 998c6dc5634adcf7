"""tools/train: run a training recipe (configs/train/<model-id>.yaml), choose the operating threshold, export ONNX
with metadata.

Three kinds of data (the recipe's ``data``): ``protocol``, every source under ``--data-root`` with the fixed splits,
mined views and tower screens of engines/data/sources.py (the shipped models since v2); ``folders``, dataset and
negative folders (kvasir-seg / masks / imagefolder / negatives layouts, engines/data/datasets.py); ``folders`` with
``multiclass``, one imagefolder dataset with one output per class.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from engines.errors import ConfigError, DatasetError, PolypwatchError
from engines.training.recipe import Recipe, load_recipe

log = logging.getLogger("train")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", metavar="FILE",
                    help="training recipe (YAML, every key in engines/training/recipe.py); default: every key at its "
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
    return ap


def recipe_of(args) -> Recipe:
    """The recipe of this invocation, checked against the data options given with it."""
    r = load_recipe(args.recipe, args.overrides)
    if r.data == "protocol":
        if args.dataset or args.negatives:
            raise ConfigError("--dataset/--negatives: not with a protocol recipe (data: protocol takes every source "
                              "under --data-root)")
        if not args.data_root:
            raise ConfigError("--data-root: a protocol recipe (data: protocol) needs the folder of its sources")
    elif args.holdout_source:
        raise ConfigError("--holdout-source: only with a protocol recipe (data: protocol)")
    return r


def _folders(args, r: Recipe) -> tuple[list[Path], list[Path]]:
    """The dataset and negative folders: --dataset/--negatives as given, else the recipe's, under --data-root."""
    if args.dataset or args.negatives:
        return [Path(d) for d in args.dataset], [Path(d) for d in args.negatives]
    base = Path(args.data_root or ".")
    return [base / d for d in r.datasets], [base / d for d in r.negatives]


def _collect(args, r: Recipe, spec):
    from engines.data.arrays import ArraySet, from_samples, from_synthetic
    from engines.data.datasets import load_dataset, split_fraction
    datasets, negatives = _folders(args, r)
    train_s, val_s = [], []
    for root in datasets:
        try:
            tr, va = load_dataset(root, split="train"), load_dataset(root, split="val")
        except DatasetError as e:
            if "no split list" not in str(e):
                raise
            tr, va = split_fraction(load_dataset(root), r.val_fraction, r.seed)
        train_s += tr
        val_s += va
    for d in negatives:
        tr, va = split_fraction(load_dataset(d, layout="negatives"), r.val_fraction, r.seed)
        train_s += tr
        val_s += va
    if not train_s or not val_s:
        raise DatasetError("no training or validation samples: give --dataset and/or --negatives (or a recipe that "
                           "names its datasets)")
    log.info("loading %d training and %d validation images through the shared preprocessing", len(train_s), len(val_s))
    tr_set = from_samples(train_s, spec)
    va_set = from_samples(val_s, spec)
    if r.synthetic > 0:
        tr_set = ArraySet.concat([tr_set, from_synthetic(r.synthetic, spec)])
    for name, s in (("train", tr_set), ("val", va_set)):
        if len(set(s.labels.tolist())) < 2:
            raise DatasetError(f"{name} set has only one class ({int(s.labels[0])}); it needs polyp and no-polyp frames")
    info = {"datasets": [p.name for p in datasets + negatives], "train_real": len(train_s),
            "synthetic_frames": int(tr_set.synthetic.sum())}
    return tr_set, va_set, info


def _collect_protocol(args, r: Recipe, spec):
    from engines.data.arrays import ArraySet, from_samples, from_synthetic
    from engines.data.sources import build_protocol, check_holdout, load_sources
    if args.holdout_source:
        check_holdout(args.holdout_source)
        if args.holdout_source not in r.sources:
            raise ConfigError(f"--holdout-source {args.holdout_source}: not among the recipe's sources {list(r.sources)}")
    sources = load_sources(args.data_root, r.sources)
    proto = build_protocol(sources, args.holdout_source, r.mined_per_frame, r.tower_variants)
    log.info("protocol (held out: %s): %d training and %d validation frames", args.holdout_source or "none",
             len(proto.train), len(proto.val))
    progress = lambda i, n: _progress_line("frames", i, n)  # noqa: E731
    tr_set = from_samples(list(proto.train), spec, progress, workers=args.workers, cache_dir=args.cache or None)
    va_set = from_samples(list(proto.val), spec, progress, workers=args.workers, cache_dir=args.cache or None)
    if r.synthetic > 0:
        tr_set = ArraySet.concat([tr_set, from_synthetic(r.synthetic, spec)])
    if r.synthetic_val > 0:
        va_set = ArraySet.concat([va_set, from_synthetic(r.synthetic_val, spec, seed=2000)])
    info = {"data_root_sources": sorted({s.dataset for s in proto.train}), "holdout_source": args.holdout_source,
            "train_frames": len(tr_set), "val_frames": len(va_set)}
    return tr_set, va_set, info


def _collect_multiclass(args, r: Recipe, spec):
    from engines.data.arrays import from_samples
    from engines.data.datasets import imagefolder_classes, load_dataset, split_fraction
    datasets, negatives = _folders(args, r)
    if len(datasets) != 1 or negatives or r.synthetic:
        raise DatasetError("multiclass: expected exactly one dataset (imagefolder layout), no negatives and "
                           "synthetic: 0")
    classes = imagefolder_classes(datasets[0])
    samples = load_dataset(datasets[0], multiclass=True)
    tr, va = split_fraction(samples, r.val_fraction, r.seed)
    if not tr or not va:
        raise DatasetError(f"{datasets[0]}: too few images for a {r.val_fraction:.0%} validation split")
    return (from_samples(tr, spec, multiclass=True), from_samples(va, spec, multiclass=True), classes,
            {"datasets": [datasets[0].name]})


def _progress_line(what: str, i: int, n: int) -> None:
    if i == n or i % 500 == 0:
        log.info("%s %d/%d", what, i, n)


def train_config(r: Recipe, num_classes: int = 1):
    """The training loop's configuration from a recipe (engines.training.train.TrainConfig)."""
    from engines.runtime.preprocess import PreprocessSpec
    from engines.training.train import TrainConfig
    spec = PreprocessSpec(input_height=r.input_size, input_width=r.input_size)
    return TrainConfig(epochs=r.epochs, batch_size=r.batch_size, lr=r.lr, weight_decay=r.weight_decay,
                       heatmap_weight=r.heatmap_weight, freeze_blocks=r.freeze_blocks, backbone=r.backbone,
                       seed=r.seed, pretrained=r.pretrained, augment=r.augment, message_box=r.message_box,
                       samples_per_epoch=r.samples_per_epoch, num_classes=num_classes, spec=spec, head=r.head,
                       aux_weight=r.aux_weight)


def _record_inputs(out: Path, r: Recipe, recipe_file: str, tr_set, va_set, info: dict) -> dict:
    """What this run trains on, written before training starts (OUT/inputs.json): the recipe, its hash, the data
    fingerprints and the numeric environment; the same goes into metrics.json at the end."""
    from engines.training.provenance import provenance
    rec = {"recipe": {"file": recipe_file, "sha256": r.digest(), "settings": r.settings()},
           **info, **provenance(tr_set, va_set)}
    (out / "inputs.json").write_text(json.dumps(rec, indent=1))
    log.info("recipe %s, data fingerprints %s", r.digest(), rec["data_fingerprint"])
    return rec


def run(args) -> dict:
    import dataclasses

    from engines.training.train import train
    r = recipe_of(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = train_config(r)
    spec = cfg.spec
    t0 = time.monotonic()
    if r.multiclass:
        tr_set, va_set, classes, info = _collect_multiclass(args, r, spec)
        cfg = dataclasses.replace(cfg, num_classes=len(classes))
    elif r.data == "protocol":
        tr_set, va_set, info = _collect_protocol(args, r, spec)
    else:
        tr_set, va_set, info = _collect(args, r, spec)
    inputs = _record_inputs(out, r, str(args.recipe or ""), tr_set, va_set, info)
    net, history = train(tr_set, va_set, cfg, out, resume=args.resume, epochs_now=args.epochs_now)
    common = {"history": history, "train_count": int(len(tr_set)), "val_count": int(len(va_set)),
              "train_seconds": round(time.monotonic() - t0, 1), **inputs}
    training = {**info, "recipe": inputs["recipe"]["file"], "recipe_sha256": r.digest(), "command": _command(),
                "epochs": r.epochs, "seed": r.seed}
    if r.multiclass:
        metrics, meta = _multiclass_result(r, spec, net, va_set, classes, out, training)
    elif r.data == "protocol":
        metrics, meta = _protocol_result(r, spec, net, va_set, out, training)
    else:
        metrics, meta = _folder_result(r, spec, net, va_set, out, training)
    return _finish(net, meta, va_set, spec, out, {**metrics, **common})


def _folder_result(r: Recipe, spec, net, va_set, out: Path, training: dict):
    from engines.evaluation.metrics import auroc, sens_spec, threshold_for_specificity
    from engines.runtime.metadata import ModelMetadata
    from engines.training.reports import confusion_png, roc_png, top_losses_png
    from engines.training.train import predict
    scores, _ = predict(net, va_set, spec)
    y = va_set.labels
    thr = float(min(max(threshold_for_specificity(scores[y == 0], r.target_specificity), 0.02), 0.98))
    sens, specif = sens_spec(y, scores >= thr)
    roc_png({"validation": (y, scores)}, out / "roc.png")
    metrics = {"val_auroc": auroc(y, scores), "threshold": thr, "val_sensitivity": sens, "val_specificity": specif,
               "confusion_matrix": confusion_png(y, scores >= thr, out / "confusion_matrix.png",
                                                 f"validation, threshold {thr:.3f}"),
               "val_positives": int(y.sum()),
               "top_losses": top_losses_png(va_set.images, y, scores, out / "top_losses.png", names=va_set.names)}
    dense = r.head != "pooled"
    meta = ModelMetadata(model_id=r.model_id or out.name, preprocess=spec, threshold=thr,
                         box_threshold=min(thr, 0.5) if dense else 0.5, decision="map_max" if dense else "pooled",
                         training=training, scores={"val_auroc": metrics["val_auroc"], "val_sensitivity": sens,
                                                    "val_specificity": specif})
    return metrics, meta


def _multiclass_result(r: Recipe, spec, net, va_set, classes, out: Path, training: dict):
    from engines.data.datasets import POSITIVE_CLASS
    from engines.evaluation.metrics import auroc, sens_spec, threshold_for_specificity
    from engines.runtime.metadata import ModelMetadata
    from engines.training.reports import confusion_multiclass_png, roc_png, top_losses_png
    from engines.training.train import predict
    probs, _ = predict(net, va_set, spec)
    y = va_set.labels
    pred = probs.argmax(1)
    positive = tuple(k for k, c in enumerate(classes) if POSITIVE_CLASS.match(c))
    m = {"classes": classes, "positive_classes": list(positive), "val_accuracy": float((pred == y).mean()),
         "per_class_recall": {c: (float((pred[y == k] == k).mean()) if (y == k).any() else None)
                              for k, c in enumerate(classes)},
         "confusion_matrix": confusion_multiclass_png(y, pred, classes, out / "confusion_matrix.png"),
         "top_losses": top_losses_png(va_set.images, y, probs, out / "top_losses.png", names=va_set.names,
                                      classes=classes)}
    thr = 0.5
    if positive:
        yb = np.isin(y, positive)
        sb = probs[:, list(positive)].sum(1)
        if yb.any() and (~yb).any():
            thr = float(min(max(threshold_for_specificity(sb[~yb], r.target_specificity), 0.02), 0.98))
            roc_png({"validation (polyp classes vs rest)": (yb, sb)}, out / "roc.png")
            sens, spec_ = sens_spec(yb, sb >= thr)
            m.update(val_auroc=auroc(yb, sb), val_sensitivity=sens, val_specificity=spec_)
    m["threshold"] = thr
    meta = ModelMetadata(model_id=r.model_id or out.name, preprocess=spec, threshold=thr, classes=tuple(classes),
                         positive_classes=positive, training=training,
                         scores={"val_accuracy": m["val_accuracy"], "val_auroc": m.get("val_auroc")})
    return m, meta


def _protocol_result(r: Recipe, spec, net, va_set, out: Path, training: dict):
    """Calibrate the score on validation pooled over all sources, choose the threshold that holds on every negative
    source, score each source."""
    from engines.evaluation.evaluate import sensitivity_at_specificity
    from engines.evaluation.metrics import auroc, sens_spec
    from engines.model import fold_temperature
    from engines.runtime.metadata import ModelMetadata
    from engines.training.calibrate import calibrated, fit_temperature, nll, threshold_for_sources
    from engines.training.reports import confusion_png, roc_png, top_losses_png
    from engines.training.train import predict
    raw, _ = predict(net, va_set, spec)
    y = va_set.labels
    temperature = fit_temperature(y, raw)
    fold_temperature(net, temperature)
    scores = calibrated(raw, temperature)
    thr, per_source_thr = threshold_for_sources(scores, y, va_set.sources, r.target_specificity)
    thr = float(min(max(thr, 0.02), 0.98))
    sens, specif = sens_spec(y, scores >= thr)
    per_source, selections = {}, {}
    for src in sorted(set(va_set.sources)):
        sel = selections[src] = np.array([s == src for s in va_set.sources])
        se, sp = sens_spec(y[sel], scores[sel] >= thr)
        per_source[src] = {"frames": int(sel.sum()), "positives": int(y[sel].sum()), "auroc": auroc(y[sel], scores[sel]),
                           "sensitivity_at_95_specificity": sensitivity_at_specificity(y[sel], scores[sel]),
                           "sensitivity": se, "specificity": sp, "own_threshold": per_source_thr.get(src)}
    metrics = {
        "val_auroc": auroc(y, scores), "threshold": thr, "val_sensitivity": sens, "val_specificity": specif,
        "val_per_source": per_source, "temperature": temperature,
        "threshold_rule": {"target_specificity": r.target_specificity, "per_source": per_source_thr},
        "val_nll": {"before": nll(y, raw), "after": nll(y, scores)},
        "confusion_matrix": confusion_png(y, scores >= thr, out / "confusion_matrix.png", f"validation, threshold {thr:.3f}"),
        "top_losses": top_losses_png(va_set.images, y, scores, out / "top_losses.png", names=va_set.names),
    }
    roc_png({src: (y[sel], scores[sel]) for src, sel in selections.items() if per_source[src]["auroc"] is not None},
            out / "roc.png")
    dense = r.head != "pooled"   # the score is the map's maximum: outlined at most at the threshold, every alert has a box
    meta = ModelMetadata(model_id=r.model_id or out.name, preprocess=spec, threshold=thr,
                         box_threshold=min(thr, 0.5) if dense else 0.5, decision="map_max" if dense else "pooled",
                         training={"protocol": "engines/data/sources.py", **training, "temperature": temperature},
                         scores={"val_auroc": metrics["val_auroc"], "val_sensitivity": sens, "val_specificity": specif,
                                 "val_auroc_per_source": {k: v["auroc"] for k, v in per_source.items()}})
    return metrics, meta


def _command() -> str:
    return "tools/train " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _finish(net, meta, va_set, spec, out: Path, metrics: dict) -> dict:
    """Export ONNX (checked against torch on validation frames), the torch checkpoint and metrics.json."""
    from engines.build.export import export_onnx, write_torch_checkpoint
    from engines.training.train import batch_tensor
    sample = np.concatenate([np.zeros((1, 3, spec.input_height, spec.input_width), np.float32),
                             batch_tensor(va_set.images[:3], spec)])
    metrics["onnx_max_abs_diff"] = export_onnx(net, meta, out / "model.onnx", sample)
    write_torch_checkpoint(net, meta, out / "model.pt")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from engines.training.train import Paused
    try:
        m = run(args)
    except Paused as e:
        print(f"train: {e}")
        return 0
    except ConfigError as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    except PolypwatchError as e:
        print(f"train: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"train: {e}", file=sys.stderr)
        return 2
    if "val_accuracy" in m:
        print(f"validation accuracy {m['val_accuracy']:.4f} over {len(m['classes'])} classes; per-class recall "
              f"{ {k: (None if v is None else round(v, 3)) for k, v in m['per_class_recall'].items()} }")
    if m.get("val_auroc") is not None:
        print(f"validation AUROC {m['val_auroc']:.4f}; at threshold {m['threshold']:.3f}: sensitivity "
              f"{m['val_sensitivity']:.3f}, specificity {m['val_specificity']:.3f}")
    print(f"ONNX parity {m['onnx_max_abs_diff']:.1e}; outputs in {args.out}")
    return 0
