"""One training run, from a ``TrainJob`` (engines/lab/training/job.py): collect the arrays, train, choose the threshold,
export ONNX with metadata. ``polypwatch train`` parses its options into a job; crossval, the grid and commissioning
build theirs in code and call ``run`` directly."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from engines.lab.training.collect import collect_folders, collect_multiclass, collect_protocol
from engines.lab.training.job import TrainJob
from engines.lab.training.recipe import Recipe
from engines.lab.training.results import command_line, finish, folder_result, multiclass_result, protocol_result

log = logging.getLogger("train")


def train_config(r: Recipe, num_classes: int = 1):
    """The training loop's configuration from a recipe (engines.lab.training.train.TrainConfig)."""
    from engines.runtime.preprocess import PreprocessSpec
    from engines.lab.training.train import TrainConfig
    spec = PreprocessSpec(input_height=r.input_size, input_width=r.input_size)
    return TrainConfig(epochs=r.epochs, batch_size=r.batch_size, lr=r.lr, weight_decay=r.weight_decay,
                       heatmap_weight=r.heatmap_weight, freeze_blocks=r.freeze_blocks, backbone=r.backbone,
                       seed=r.seed, pretrained=r.pretrained, augment=r.augment, message_box=r.message_box,
                       samples_per_epoch=r.samples_per_epoch, num_classes=num_classes, spec=spec, head=r.head,
                       aux_weight=r.aux_weight)


def _record_inputs(out: Path, r: Recipe, recipe_file: str, tr_set, va_set, info: dict) -> dict:
    """What this run trains on, written before training starts (OUT/inputs.json): the recipe, its hash, the data
    fingerprints and the numeric environment; the same goes into metrics.json at the end."""
    from engines.lab.training.provenance import provenance
    rec = {"recipe": {"file": recipe_file, "sha256": r.digest(), "settings": r.settings()},
           **info, **provenance(tr_set, va_set)}
    (out / "inputs.json").write_text(json.dumps(rec, indent=1))
    log.info("recipe %s, data fingerprints %s", r.digest(), rec["data_fingerprint"])
    return rec


def run(job: TrainJob) -> dict:
    import dataclasses

    from engines.lab.training.train import train
    r = job.recipe
    out = job.out
    out.mkdir(parents=True, exist_ok=True)
    cfg = train_config(r)
    spec = cfg.spec
    t0 = time.monotonic()
    if r.multiclass:
        tr_set, va_set, classes, info = collect_multiclass(job, r, spec)
        cfg = dataclasses.replace(cfg, num_classes=len(classes))
    elif r.data == "protocol":
        tr_set, va_set, info = collect_protocol(job, r, spec)
    else:
        tr_set, va_set, info = collect_folders(job, r, spec)
    inputs = _record_inputs(out, r, job.recipe_file, tr_set, va_set, info)
    net, history = train(tr_set, va_set, cfg, out, resume=job.resume, epochs_now=job.epochs_now)
    common = {"history": history, "train_count": int(len(tr_set)), "val_count": int(len(va_set)),
              "train_seconds": round(time.monotonic() - t0, 1), **inputs}
    training = {**info, "recipe": inputs["recipe"]["file"], "recipe_sha256": r.digest(), "command": command_line(),
                "epochs": r.epochs, "seed": r.seed}
    if r.multiclass:
        metrics, meta = multiclass_result(r, spec, net, va_set, classes, out, training)
    elif r.data == "protocol":
        metrics, meta = protocol_result(r, spec, net, va_set, out, training)
    else:
        metrics, meta = folder_result(r, spec, net, va_set, out, training)
    return finish(net, meta, va_set, spec, out, {**metrics, **common})
