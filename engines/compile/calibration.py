"""Calibration and check frames: one reader for ONNX Runtime's static quantisation (the INT8 twins, the one for
TensorRT included) and the parity checks of tools/build_engine: frames of a folder or a video, or a split of every
source of the protocol, through the project's own preprocessing.

Calibration decides the ranges INT8 keeps, so it must never see a frame the model is measured on: the protocol's
calibration frames come from the training split of each source only (``training_frames`` checks every one against
the validation and test splits and refuses a leak).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engines.lab.data.datasets import Sample
from engines.lab.data.frames import read_sample
from engines.lab.data.recordings import spread_frames
from engines.errors import DatasetError
from engines.runtime.preprocess import PreprocessSpec, preprocess


@dataclasses.dataclass(frozen=True)
class CalibrationSet:
    """Where calibration frames come from: ``samples`` (protocol training frames) or ``path`` (a folder or video)."""

    name: str                                  # recorded in the quantised model's metadata
    samples: tuple[Sample, ...] = ()
    path: str = ""

    def frames(self, count: int) -> Iterator[np.ndarray]:
        if self.samples:
            for s in self.samples[:count]:
                yield read_sample(s)[0]
        else:
            yield from spread_frames(self.path, count, what="calibration")

    def describe(self) -> dict:
        if not self.samples:
            return {"set": self.name, "path": self.path}
        per: dict[str, int] = {}
        for s in self.samples:
            per[s.dataset] = per.get(s.dataset, 0) + 1
        return {"set": self.name, "frames_per_source": per, "views": sorted({s.view for s in self.samples})}


def training_frames(data_root: str | Path, count: int, seed: int = 0,
                    names: tuple[str, ...] | None = None) -> CalibrationSet:
    """``count`` frames spread evenly over the training split of every source (or of ``names``; half as recorded, half on a tower
    screen, as the live path sees them), a seeded choice; raises DatasetError if any is a validation or test frame."""
    from engines.lab.data.sources import SOURCES, load_sources, tower_views
    sources = load_sources(data_root, tuple(names or SOURCES))
    rng = np.random.default_rng(seed)
    per = -(-count // len(sources))
    chosen: list[Sample] = []
    for name, src in sources.items():
        pool = list(src.train)
        pick = [pool[i] for i in sorted(rng.permutation(len(pool))[:per])]
        chosen += [s if k % 2 == 0 else tower_views([s], 1, seed=7)[0] for k, s in enumerate(pick)]
    order = rng.permutation(len(chosen))[:count]
    samples = tuple(chosen[i] for i in sorted(order))
    check_training_only(samples, sources)
    return CalibrationSet(f"training split of {', '.join(sources)} under {Path(data_root).name}", samples)


def validation_frames(data_root: str | Path, count: int, seed: int = 0) -> CalibrationSet:
    """``count`` frames spread over the validation split of every source (parity checks of a converted model:
    frames the model is measured on, never calibrated on)."""
    from engines.lab.data.sources import SOURCES, load_sources
    sources = load_sources(data_root, tuple(SOURCES))
    pool = [s for src in sources.values() for s in src.val]
    if not pool:
        raise DatasetError(f"{data_root}: no validation frames in {', '.join(sources)}")
    pick = np.random.default_rng(seed).permutation(len(pool))[:count]
    return CalibrationSet(f"validation split of {', '.join(sources)} under {Path(data_root).name}",
                          tuple(pool[i] for i in sorted(pick)))


def check_training_only(samples, sources: dict) -> None:
    held = {s.image for src in sources.values() for s in src.val + src.test}
    leaked = sorted({str(s.image) for s in samples if s.image in held})
    if leaked:
        raise DatasetError(f"calibration: {len(leaked)} frame(s) of a validation or test split, e.g. {leaked[0]}")


def calibration_batches(source: CalibrationSet | str | Path, spec: PreprocessSpec, count: int,
                        batch: int) -> Iterator[np.ndarray]:
    """Nx3xHxW float32 batches (the last one may be smaller) of preprocessed calibration frames."""
    cal = source if isinstance(source, CalibrationSet) else CalibrationSet(str(source), path=str(source))
    buf = []
    for img in cal.frames(count):
        buf.append(preprocess(img, spec).tensor[0])
        if len(buf) == batch:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)
