"""What a finished training run writes: the threshold and metrics of its kind of data, the ONNX model with its
metadata, its parity with torch, metrics.json."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np

from engines.lab.training.recipe import Recipe


def folder_result(r: Recipe, spec, net, va_set, out: Path, training: dict):
    from engines.lab.evaluation.metrics import auroc, sens_spec, threshold_for_specificity
    from engines.runtime.metadata import ModelMetadata
    from engines.lab.training.reports import confusion_png, roc_png, top_losses_png
    from engines.lab.training.train import predict
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


def multiclass_result(r: Recipe, spec, net, va_set, classes, out: Path, training: dict):
    from engines.lab.data.datasets import POSITIVE_CLASS
    from engines.lab.evaluation.metrics import auroc, sens_spec, threshold_for_specificity
    from engines.runtime.metadata import ModelMetadata
    from engines.lab.training.reports import confusion_multiclass_png, roc_png, top_losses_png
    from engines.lab.training.train import predict
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


def protocol_result(r: Recipe, spec, net, va_set, out: Path, training: dict):
    """Calibrate the score on validation pooled over all sources, choose the threshold that holds on every negative
    source, score each source."""
    from engines.lab.evaluation.evaluate import sensitivity_at_specificity
    from engines.lab.evaluation.metrics import auroc, sens_spec
    from engines.model import fold_temperature
    from engines.runtime.metadata import ModelMetadata
    from engines.lab.training.calibrate import calibrated, fit_temperature, nll, threshold_for_sources
    from engines.lab.training.reports import confusion_png, roc_png, top_losses_png
    from engines.lab.training.train import predict
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
                         training={"protocol": "engines/lab/data/sources.py", **training, "temperature": temperature},
                         scores={"val_auroc": metrics["val_auroc"], "val_sensitivity": sens, "val_specificity": specif,
                                 "val_auroc_per_source": {k: v["auroc"] for k, v in per_source.items()}})
    return metrics, meta


def command_line() -> str:
    return "tools/train " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def finish(net, meta, va_set, spec, out: Path, metrics: dict) -> dict:
    """Export ONNX (checked against torch on validation frames), the torch checkpoint and metrics.json."""
    from engines.compile.export import export_onnx, write_torch_checkpoint
    from engines.lab.training.train import batch_tensor
    sample = np.concatenate([np.zeros((1, 3, spec.input_height, spec.input_width), np.float32),
                             batch_tensor(va_set.images[:3], spec)])
    metrics["onnx_max_abs_diff"] = export_onnx(net, meta, out / "model.onnx", sample)
    write_torch_checkpoint(net, meta, out / "model.pt")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics
