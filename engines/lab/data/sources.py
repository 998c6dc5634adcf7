"""Every real source under one protocol: fixed splits per source, mined negatives, tower-style views, and the
leave-one-source-out split.

A source is a hospital / scope / way of recording. Under a data root laid out like ``../shared/data``:

| source      | positives                                   | negatives                                    |
|-------------|---------------------------------------------|----------------------------------------------|
| kvasir      | kvasir-seg (masks; official 880/120 split)  | kvasir-normal; polyp-free views mined from kvasir-seg |
| cvc-colondb | cvc-colondb (masks; 15 sequences)           | polyp-free views mined from its frames       |
| polypgen-A  | polypgen-ab/centre_A/positive (no masks)    | polypgen-ab/centre_A/negative/seq*_neg       |
| polypgen-B  | polypgen-ab/centre_B/positive (no masks)    | polypgen-ab/centre_B/negative/seq*_neg       |
| bkai-igh    | bkai-igh (masks; Hanoi, Fujifilm-style)     | polyp-free views mined from its frames       |

Splits are fixed (no seed to choose): by sequence wherever sequences exist, never by frame across a sequence.
- kvasir: kvasir-seg official train/val; kvasir-normal: the seed-0 80/20 split of v1, whose 20% (160 frames)
  is the TEST set that no run ever trains on or chooses anything with ("unseen normals"); its 80% is split
  again (seed 1, 85/15) into train/val.
- cvc-colondb: sequences 3, 8 and 13 are validation, the others training.
- polypgen-X: positives seed-0 80/20 by frame (single frames, no sequence given); negatives by sequence, the
  sequence with the second-smallest number is validation.
- bkai-igh: seed-0 80/20 by frame. It has no sequence or patient ids, so frames of one procedure can fall on both
  sides: its validation scores are optimistic, as Kvasir-SEG's are.
Mined negatives come from the positives of the same split (a training frame's views stay in training).
"""
from __future__ import annotations

import dataclasses
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.lab.data.datasets import Sample, load_dataset, read_image, read_mask, split_fraction
from engines.lab.data.mining import polyp_free_regions, polyp_regions
from engines.errors import DatasetError

SOURCES = ("kvasir", "cvc-colondb", "polypgen-A", "polypgen-B", "bkai-igh")
CVC_VAL_SEQUENCES = {"3", "8", "13"}


@dataclass(frozen=True)
class SourceSplit:
    """One source's frames by role. ``test``: frames no run may train on or tune with."""

    name: str
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    test: tuple[Sample, ...] = ()

    def all(self) -> tuple[Sample, ...]:
        return self.train + self.val + self.test


def _tag(samples, source: str) -> list[Sample]:
    return [dataclasses.replace(s, dataset=source) for s in samples]


def _kvasir(root: Path) -> SourceSplit:
    seg, normal = root / "kvasir-seg", root / "kvasir-normal"
    tr, va = load_dataset(seg, split="train"), load_dataset(seg, split="val")
    pool, test = split_fraction(load_dataset(normal, layout="negatives"), 0.2, 0)
    ntr, nva = split_fraction(pool, 0.15, 1)
    return SourceSplit("kvasir", tuple(_tag(tr + ntr, "kvasir")), tuple(_tag(va + nva, "kvasir")),
                       tuple(_tag(test, "kvasir")))


def _cvc(root: Path) -> SourceSplit:
    samples = _tag(load_dataset(root / "cvc-colondb", layout="masks"), "cvc-colondb")
    if any(not s.group for s in samples):
        raise DatasetError(f"{root / 'cvc-colondb'}: frames without a sequence (README table missing?)")
    return SourceSplit("cvc-colondb", tuple(s for s in samples if s.group not in CVC_VAL_SEQUENCES),
                       tuple(s for s in samples if s.group in CVC_VAL_SEQUENCES))


def _polypgen(root: Path, centre: str) -> SourceSplit:
    name = f"polypgen-{centre}"
    base = root / "polypgen-ab" / f"centre_{centre}"
    pos = [dataclasses.replace(s, label=1, group="") for s in load_dataset(base / "positive", layout="negatives")]
    ptr, pva = split_fraction(pos, 0.2, 0)
    seq_dirs = sorted((d for d in (base / "negative").iterdir() if d.is_dir()),
                      key=lambda d: int(re.sub(r"\D", "", d.name) or 0))
    if len(seq_dirs) < 2:
        raise DatasetError(f"{base / 'negative'}: expected at least two sequence folders, found {len(seq_dirs)}")
    neg = {d.name: [dataclasses.replace(s, group=d.name) for s in load_dataset(d, layout="negatives")] for d in seq_dirs}
    val_seq = seq_dirs[1].name
    ntr = [s for k, v in neg.items() if k != val_seq for s in v]
    return SourceSplit(name, tuple(_tag(ptr + ntr, name)), tuple(_tag(pva + neg[val_seq], name)))


def _bkai(root: Path) -> SourceSplit:
    samples = _tag(load_dataset(root / "bkai-igh", layout="masks"), "bkai-igh")
    tr, va = split_fraction(samples, 0.2, 0)
    return SourceSplit("bkai-igh", tuple(tr), tuple(va))


def load_sources(root: str | Path, names: tuple[str, ...] = SOURCES) -> dict[str, SourceSplit]:
    """The sources found under ``root`` (a missing folder is an error naming it)."""
    root = Path(root)
    loaders = {"kvasir": _kvasir, "cvc-colondb": _cvc, "polypgen-A": lambda r: _polypgen(r, "A"),
               "polypgen-B": lambda r: _polypgen(r, "B"), "bkai-igh": _bkai}
    unknown = [n for n in names if n not in loaders]
    if unknown:
        raise DatasetError(f"unknown source(s) {unknown}; expected some of {list(SOURCES)}")
    return {n: loaders[n](root) for n in names}


def check_holdout(name: str) -> str:
    if name not in SOURCES:
        raise DatasetError(f"--holdout-source: expected one of {list(SOURCES)}, got {name!r}")
    return name


def mined_views(samples: tuple[Sample, ...] | list[Sample], per_frame: int, zoomed_positives: int = 1,
                seed: int = 0) -> list[Sample]:
    """Polyp-free views (label 0) and zoomed polyp views (label 1) of the positives that have a mask."""
    out = []
    for s in samples:
        if s.mask is None or s.label == 0:
            continue
        rng = np.random.default_rng(zlib.crc32(f"{s.identity}|{seed}".encode()))
        img = read_image(s.image)
        m = read_mask(s.mask, img.shape[:2])
        if not m.any():
            continue
        out += [dataclasses.replace(s, label=0, region=r) for r in polyp_free_regions(img, m, rng, per_frame)]
        out += [dataclasses.replace(s, label=1, region=r) for r in polyp_regions(m, rng, zoomed_positives)]
    return out


def tower_views(samples: tuple[Sample, ...] | list[Sample], variants: int, seed: int = 0) -> list[Sample]:
    """Each sample once more per variant, shown on a tower screen (seeded per sample and variant)."""
    return [dataclasses.replace(s, tower_seed=zlib.crc32(f"{s.identity}|{s.region}|{seed}|{k}".encode()))
            for s in samples for k in range(variants)]


@dataclass(frozen=True)
class Protocol:
    """What one run trains on, chooses its checkpoint/threshold with, and is tested on."""

    holdout: str                      # "" = every source trains
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    test: tuple[Sample, ...]          # the held-out source (all of it) + unseen normals; tower-style test set
    tower_test: tuple[Sample, ...]

    def __post_init__(self) -> None:
        if self.holdout:
            leaked = [s for s in self.train + self.val if s.dataset == self.holdout]
            if leaked:
                raise DatasetError(f"leave-one-source-out: {len(leaked)} frame(s) of {self.holdout!r} reached "
                                   f"training or validation, e.g. {leaked[0].image}")
        test_images = {s.image for s in self.test + self.tower_test}
        trained = {s.image for s in self.train + self.val}
        both = test_images & trained
        if both:
            raise DatasetError(f"{len(both)} test image(s) also in training/validation, e.g. {sorted(both)[0]}")


def build_protocol(sources: dict[str, SourceSplit], holdout: str = "", mined_per_frame: int = 2,
                   tower_variants: int = 1) -> Protocol:
    """Training/validation over every source but ``holdout``; test = the held-out source + unseen normals.

    Training and validation frames are used as recorded, as mined views, and as tower screens; the tower-style
    negative test set is made the same way from the unseen normals (frames no run trains on)."""
    if holdout:
        check_holdout(holdout)
        if holdout not in sources:
            raise DatasetError(f"--holdout-source {holdout!r}: not among the loaded sources {sorted(sources)}")
    train, val = [], []
    for name, src in sources.items():
        if name == holdout:
            continue
        tr = list(src.train) + mined_views(src.train, mined_per_frame)
        va = list(src.val) + mined_views(src.val, mined_per_frame)
        train += tr + tower_views(tr, tower_variants)
        val += va + tower_views(va, 1, seed=1)
    test = holdout_test(sources, holdout, mined_per_frame) if holdout else unseen_normals(sources)
    return Protocol(holdout, tuple(train), tuple(val), tuple(test), tuple(tower_test(sources)))


def unseen_normals(sources: dict[str, SourceSplit]) -> list[Sample]:
    """Frames no run trains on or tunes with (the kvasir-normal test share)."""
    return [s for src in sources.values() for s in src.test]


def tower_test(sources: dict[str, SourceSplit]) -> list[Sample]:
    """The tower-style negative test set: every unseen normal on two tower screens (fixed seeds)."""
    return tower_views(unseen_normals(sources), 2, seed=2)


def holdout_test(sources: dict[str, SourceSplit], holdout: str, mined_per_frame: int = 2) -> list[Sample]:
    """A left-out source scored against its own negatives and polyp-free views, plus the unseen normals."""
    held = sources[check_holdout(holdout)]
    test = list(held.all()) + mined_views(held.all(), mined_per_frame, zoomed_positives=0)
    return test + [s for s in unseen_normals(sources) if s.dataset != holdout]
