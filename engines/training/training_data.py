"""Turning Samples (and generated frames) into arrays through the shared preprocessing, once, before training."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from engines.data.datasets import Sample, read_image, read_mask
from engines.errors import DatasetError
from engines.runtime.preprocess import PreprocessSpec, crop_mask, crop_to_input, find_active_area

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ArraySet:
    images: np.ndarray      # N x H x W x 3 uint8 (BGR, after the shared preprocessing)
    masks: np.ndarray       # N x H x W float32 0..1 (zeros where no mask)
    labels: np.ndarray      # N int64
    has_mask: np.ndarray    # N bool
    groups: list[str]
    names: list[str]
    synthetic: np.ndarray   # N bool

    def __len__(self) -> int:
        return len(self.labels)

    @staticmethod
    def concat(sets: list["ArraySet"]) -> "ArraySet":
        sets = [s for s in sets if len(s)]
        return ArraySet(np.concatenate([s.images for s in sets]), np.concatenate([s.masks for s in sets]),
                        np.concatenate([s.labels for s in sets]), np.concatenate([s.has_mask for s in sets]),
                        sum((s.groups for s in sets), []), sum((s.names for s in sets), []),
                        np.concatenate([s.synthetic for s in sets]))


def from_samples(samples: list[Sample], spec: PreprocessSpec, progress=None, multiclass: bool = False) -> ArraySet:
    if not samples:
        raise DatasetError("no samples to load")
    n, H, W = len(samples), spec.input_height, spec.input_width
    images = np.zeros((n, H, W, 3), np.uint8)
    masks = np.zeros((n, H, W), np.float32)
    labels = np.zeros(n, np.int64)
    has_mask = np.zeros(n, bool)
    for i, s in enumerate(samples):
        img = read_image(s.image)
        area = find_active_area(img, spec)
        images[i] = crop_to_input(img, area, spec)
        label = s.label
        if s.mask is not None:
            m = read_mask(s.mask, img.shape[:2])
            masks[i] = crop_mask(m, area, spec)
            has_mask[i] = True
            if label < 0:
                label = int(m.any())
        elif s.label == 0 and not multiclass:
            has_mask[i] = True      # a frame without polyps has an all-empty mask
        labels[i] = max(label, 0)
        if progress is not None:
            progress(i + 1, n)
    return ArraySet(images, masks, labels, has_mask, [s.group for s in samples],
                    [str(s.image) for s in samples], np.zeros(n, bool))


def from_synthetic(count: int, spec: PreprocessSpec, seed: int = 1000) -> ArraySet:
    """``count`` generated frames, about half with a polyp, from seeds ``seed``, ``seed+1``, ...

    Seeds from 1000 up are kept for training; demos, tests and measurements use small seeds.
    """
    from engines.data.synthetic import SceneRenderer, SynthParams
    rng = np.random.default_rng(seed)
    pos, neg = [], []
    k = 0
    while len(pos) + len(neg) < count and k < 200:
        size = [(640, 480), (960, 540), (720, 576)][k % 3]
        r = SceneRenderer(SynthParams(seed=seed + k, seconds=60, width=size[0], height=size[1], fps=25))
        for i in sorted(rng.choice(r.params.frame_count, 40, replace=False)):
            fr = r.render(int(i))
            big = [q for q in fr.polyps if q.area_px > 0.004 * r.side * r.side]
            if big and len(pos) < count // 2:
                m = np.zeros(fr.image.shape[:2], np.uint8)
                for q in fr.polyps:
                    m |= fr.masks[q.polyp_id].astype(np.uint8)
                pos.append((fr.image, m, f"synthetic:seed={seed + k}:frame={i}"))
            elif not fr.polyps and len(neg) < count - count // 2:
                neg.append((fr.image, np.zeros(fr.image.shape[:2], np.uint8), f"synthetic:seed={seed + k}:frame={i}"))
        k += 1
    items = [(a, m, nm, 1) for a, m, nm in pos] + [(a, m, nm, 0) for a, m, nm in neg]
    n, H, W = len(items), spec.input_height, spec.input_width
    images = np.zeros((n, H, W, 3), np.uint8)
    masks = np.zeros((n, H, W), np.float32)
    for i, (img, m, _, _) in enumerate(items):
        area = find_active_area(img, spec)
        images[i] = crop_to_input(img, area, spec)
        masks[i] = crop_mask(m, area, spec)
    return ArraySet(images, masks, np.array([it[3] for it in items], np.int64), np.ones(n, bool),
                    ["synthetic"] * n, [it[2] for it in items], np.ones(n, bool))
