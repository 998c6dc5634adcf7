"""The arrays a training job trains and validates on, by the recipe's kind of data: ``protocol`` (every source
under the job's data root with the fixed splits, mined views and tower screens of engines/lab/data/sources.py),
``folders`` (dataset and negative folders), ``folders`` with ``multiclass`` (one imagefolder dataset)."""
from __future__ import annotations

import logging
from pathlib import Path

from engines.errors import ConfigError, DatasetError
from engines.lab.training.job import TrainJob
from engines.lab.training.recipe import Recipe

log = logging.getLogger("train")


def _folders(job: TrainJob, r: Recipe) -> tuple[list[Path], list[Path]]:
    """The dataset and negative folders: --dataset/--negatives as given, else the recipe's, under --data-root."""
    if job.dataset or job.negatives:
        return [Path(d) for d in job.dataset], [Path(d) for d in job.negatives]
    base = Path(job.data_root or ".")
    return [base / d for d in r.datasets], [base / d for d in r.negatives]


def collect_folders(job: TrainJob, r: Recipe, spec):
    from engines.lab.data.arrays import ArraySet, from_samples, from_synthetic
    from engines.lab.data.datasets import load_dataset, split_fraction
    datasets, negatives = _folders(job, r)
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


def collect_protocol(job: TrainJob, r: Recipe, spec):
    from engines.lab.data.arrays import ArraySet, from_samples, from_synthetic
    from engines.lab.data.sources import build_protocol, check_holdout, load_sources
    if job.holdout_source:
        check_holdout(job.holdout_source)
        if job.holdout_source not in r.sources:
            raise ConfigError(f"--holdout-source {job.holdout_source}: not among the recipe's sources {list(r.sources)}")
    sources = load_sources(job.data_root, r.sources)
    proto = build_protocol(sources, job.holdout_source, r.mined_per_frame, r.tower_variants)
    log.info("protocol (held out: %s): %d training and %d validation frames", job.holdout_source or "none",
             len(proto.train), len(proto.val))
    progress = lambda i, n: _progress_line("frames", i, n)  # noqa: E731
    tr_set = from_samples(list(proto.train), spec, progress, workers=job.workers, cache_dir=job.cache or None)
    va_set = from_samples(list(proto.val), spec, progress, workers=job.workers, cache_dir=job.cache or None)
    if r.synthetic > 0:
        tr_set = ArraySet.concat([tr_set, from_synthetic(r.synthetic, spec)])
    if r.synthetic_val > 0:
        va_set = ArraySet.concat([va_set, from_synthetic(r.synthetic_val, spec, seed=2000)])
    info = {"data_root_sources": sorted({s.dataset for s in proto.train}), "holdout_source": job.holdout_source,
            "train_frames": len(tr_set), "val_frames": len(va_set)}
    return tr_set, va_set, info


def collect_multiclass(job: TrainJob, r: Recipe, spec):
    from engines.lab.data.arrays import from_samples
    from engines.lab.data.datasets import imagefolder_classes, load_dataset, split_fraction
    datasets, negatives = _folders(job, r)
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
