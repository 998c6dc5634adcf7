"""Which of the lab's frames calibrate and check a converted model (INT8 twins, TensorRT engines): chosen from the
protocol's splits here, handed to engines/compile as a CalibrationSet of frames.

Calibration decides the ranges INT8 keeps, so it must never see a frame the model is measured on: the protocol's
calibration frames come from the training split of each source only (``training_frames`` checks every one against
the validation and test splits and refuses a leak).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.compile.calibration import CalibrationSet
from engines.errors import DatasetError
from engines.lab.data.datasets import Sample
from engines.lab.data.frames import read_sample


@dataclass(frozen=True)
class SampleReader:
    """The reader compile calls: the first ``count`` of ``samples``, in order, as BGR frames."""

    samples: tuple[Sample, ...]

    def __call__(self, count: int):
        return (read_sample(s)[0] for s in self.samples[:count])


def sample_set(name: str, samples: tuple[Sample, ...]) -> CalibrationSet:
    """A CalibrationSet reading ``samples`` in order; its info counts them per source and names their views."""
    per: dict[str, int] = {}
    for s in samples:
        per[s.dataset] = per.get(s.dataset, 0) + 1
    return CalibrationSet(name, reader=SampleReader(tuple(samples)),
                          info={"frames_per_source": per, "views": sorted({s.view for s in samples})})


def training_frames(data_root: str | Path, count: int, seed: int = 0,
                    names: tuple[str, ...] | None = None) -> CalibrationSet:
    """``count`` frames spread evenly over the training split of every source (or of ``names``; half as recorded,
    half on a tower screen, as the live path sees them), a seeded choice (``.reader.samples``); raises
    DatasetError if any is a validation or test frame."""
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
    return sample_set(f"training split of {', '.join(sources)} under {Path(data_root).name}", samples)


def validation_frames(data_root: str | Path, count: int, seed: int = 0) -> CalibrationSet:
    """``count`` frames spread over the validation split of every source (parity checks of a converted model:
    frames the model is measured on, never calibrated on)."""
    from engines.lab.data.sources import SOURCES, load_sources
    sources = load_sources(data_root, tuple(SOURCES))
    pool = [s for src in sources.values() for s in src.val]
    if not pool:
        raise DatasetError(f"{data_root}: no validation frames in {', '.join(sources)}")
    pick = np.random.default_rng(seed).permutation(len(pool))[:count]
    return sample_set(f"validation split of {', '.join(sources)} under {Path(data_root).name}",
                      tuple(pool[i] for i in sorted(pick)))


def check_training_only(samples, sources: dict) -> None:
    held = {s.image for src in sources.values() for s in src.val + src.test}
    leaked = sorted({str(s.image) for s in samples if s.image in held})
    if leaked:
        raise DatasetError(f"calibration: {len(leaked)} frame(s) of a validation or test split, e.g. {leaked[0]}")
