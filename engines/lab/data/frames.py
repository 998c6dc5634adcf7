"""A Sample as the image (and mask) a model sees before the shared preprocessing: the recorded frame, a re-framed
region of it (mined views) and/or the frame on a tower screen. Training and
evaluation both read samples through ``read_sample``, so a mined or tower-style frame is the same wherever it is
used."""
from __future__ import annotations

import zlib

import numpy as np

from engines.lab.data.datasets import Sample, read_image, read_mask
from engines.lab.data.mining import scope_view
from engines.lab.data.tower import tower_frame


def sample_rng(sample: Sample, salt: str) -> np.random.Generator:
    """A generator fixed by the sample's identity, so a sample always renders the same way."""
    key = f"{sample.identity}|{sample.region}|{sample.tower_seed}|{salt}".encode()
    return np.random.default_rng(zlib.crc32(key))


def read_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray | None]:
    """(HxWx3 uint8 BGR image, HxW uint8 0/1 polyp mask or None when the sample has no mask)."""
    img = read_image(sample.image)
    mask = read_mask(sample.mask, img.shape[:2]) if sample.mask is not None else None
    if sample.region is not None:
        img, mask = scope_view(img, mask, sample.region, sample_rng(sample, "view"))
        if sample.label == 0:
            mask = np.zeros(img.shape[:2], np.uint8)   # a mined negative: nothing of the polyp is in view
    if sample.tower_seed >= 0:
        img, mask = tower_frame(img, mask, np.random.default_rng(sample.tower_seed))
    return img, mask
