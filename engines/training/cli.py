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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="train", description="Train the polyp classifier/localiser and export it "
                                 "to ONNX with its metadata. Layouts: see engines/datasets.py.")
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
    ap.add_argument("--input-size", type=int, default=256, help="square model input (pixels)")
    ap.add_argument("--target-specificity", type=float, default=0.95,
                    help="operating threshold: the lowest giving this specificity on validation negatives")
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
    from engines.training.reports import confusion_png, roc_png, top_losses_png
    from engines.training.train import TrainConfig, predict, train
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = PreprocessSpec(input_height=args.input_size, input_width=args.input_size)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, augment=args.augment,
                      pretrained=not args.no_pretrained, spec=spec)
    t0 = time.monotonic()
    if args.multiclass:
        tr_set, va_set, classes = _collect_multiclass(args, spec)
        cfg = dataclasses.replace(cfg, num_classes=len(classes))
        net, history = train(tr_set, va_set, cfg, out)
        probs, _ = predict(net, va_set, spec)
        metrics, positive = _multiclass_metrics(args, out, va_set, probs, classes)
        metrics.update(history=history, train_count=int(len(tr_set)), val_count=int(len(va_set)),
                       train_seconds=round(time.monotonic() - t0, 1))
        meta = ModelMetadata(model_id=args.model_id or out.name, preprocess=spec, threshold=metrics["threshold"],
                             classes=tuple(classes), positive_classes=positive,
                             training={"datasets": [Path(args.dataset[0]).name], "command": _command(),
                                       "epochs": args.epochs, "seed": args.seed},
                             scores={"val_accuracy": metrics["val_accuracy"], "val_auroc": metrics.get("val_auroc")})
        return _finish(net, meta, va_set, spec, out, metrics)
    tr_set, va_set, n_tr, n_va = _collect(args, spec)
    net, history = train(tr_set, va_set, cfg, out)
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
    }
    command = _command()
    meta = ModelMetadata(model_id=args.model_id or out.name, preprocess=spec, threshold=thr, box_threshold=0.5,
                         training={"datasets": [str(Path(d).name) for d in args.dataset + args.negatives],
                                   "synthetic_frames": int(tr_set.synthetic.sum()), "command": command,
                                   "epochs": args.epochs, "seed": args.seed},
                         scores={"val_auroc": metrics["val_auroc"], "val_sensitivity": sens,
                                 "val_specificity": specif})
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
    try:
        m = run(args)
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
