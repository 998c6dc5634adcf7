"""Turning Samples (and generated frames) into arrays through the shared preprocessing, once, for training and for
the shortcut probes.

Mined and tower-style views are rendered here (``engines.lab.data.frames.read_sample``), in worker processes, and
the arrays can be cached on disk (``cache_dir``): a key over the samples, the preprocessing spec and this
module's version names the file, so a changed data set or spec never reads a stale cache.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.lab.data.datasets import Sample
from engines.lab.data.frames import read_sample
from engines.errors import DatasetError
from engines.runtime.preprocess import PreprocessSpec, crop_mask, crop_to_input, find_active_area

log = logging.getLogger(__name__)
CACHE_VERSION = 2     # bump when rendering or preprocessing of samples changes


@dataclass(frozen=True, eq=False)
class ArraySet:
    images: np.ndarray      # N x H x W x 3 uint8 (BGR, after the shared preprocessing)
    masks: np.ndarray       # N x H x W float32 0..1 (zeros where no mask)
    labels: np.ndarray      # N int64
    has_mask: np.ndarray    # N bool
    groups: list[str]
    names: list[str]
    synthetic: np.ndarray   # N bool
    sources: list[str] | None = None   # the source of each row (engines.lab.data.sources); "" when unknown

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.sources is None:
            object.__setattr__(self, "sources", [""] * n)
        for name in ("images", "masks", "has_mask", "synthetic", "groups", "names", "sources"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ArraySet.{name}: expected {n} rows, got {len(getattr(self, name))}")

    def __len__(self) -> int:
        return len(self.labels)

    @staticmethod
    def concat(sets: list["ArraySet"]) -> "ArraySet":
        sets = [s for s in sets if len(s)]
        return ArraySet(np.concatenate([s.images for s in sets]), np.concatenate([s.masks for s in sets]),
                        np.concatenate([s.labels for s in sets]), np.concatenate([s.has_mask for s in sets]),
                        sum((s.groups for s in sets), []), sum((s.names for s in sets), []),
                        np.concatenate([s.synthetic for s in sets]), sum((s.sources for s in sets), []))


def _one(args) -> tuple[np.ndarray, np.ndarray, int, bool]:
    s, spec, multiclass = args
    img, m = read_sample(s)
    area = find_active_area(img, spec)
    image = crop_to_input(img, area, spec)
    label, has_mask = s.label, False
    mask = np.zeros((spec.input_height, spec.input_width), np.float32)
    if m is not None:
        mask = crop_mask(m, area, spec)
        has_mask = True
        if label < 0:
            label = int(m.any())
    elif s.label == 0 and not multiclass:
        has_mask = True      # a frame without polyps has an all-empty mask
    return image, mask, max(label, 0), has_mask


def row_key(s: Sample) -> str:
    """What makes a sample's arrays: the frame, its label, whether it has a mask, the view."""
    return f"{s.identity}|{s.label}|{s.mask is not None}|{s.region}|{s.tower_seed}"


def sample_key(samples: list[Sample], spec: PreprocessSpec, multiclass: bool) -> str:
    h = hashlib.sha256(_spec_key(spec, multiclass).encode())
    for s in samples:
        h.update((row_key(s) + "\n").encode())
    return h.hexdigest()[:20]


def _spec_key(spec: PreprocessSpec, multiclass: bool) -> str:
    return hashlib.sha256(json.dumps([CACHE_VERSION, spec.to_dict(), multiclass]).encode()).hexdigest()[:12]


def _from_cached_rows(samples: list[Sample], cache_dir: Path, spec_key: str, out: tuple) -> np.ndarray:
    """Fill ``out`` (images, masks, labels, has_mask) with the rows of the cache file of the same spec that holds
    most of ``samples`` (a leave-one-source-out run reuses the arrays of the all-source run; a run with a few new
    views renders only those). Returns which rows were filled (N bool)."""
    want = [row_key(s) for s in samples]
    best, best_index, best_count = None, {}, 0
    for path in sorted(cache_dir.glob(f"arrays-*-{spec_key}.npz")):
        with np.load(path) as z:
            if "keys" not in z.files:
                continue
            index = {k: i for i, k in enumerate(z["keys"].tolist())}
        count = sum(k in index for k in want)
        if count > best_count:
            best, best_index, best_count = path, index, count
    filled = np.zeros(len(samples), bool)
    if best is None:
        return filled
    pairs = [(i, best_index[k]) for i, k in enumerate(want) if k in best_index]
    dst, src = np.array([p[0] for p in pairs], int), np.array([p[1] for p in pairs], int)
    with np.load(best) as z:
        out[0][dst] = z["images"][src]
        out[1][dst] = z["masks"][src].astype(np.float32) / 255.0
        out[2][dst] = z["labels"][src]
        out[3][dst] = z["has_mask"][src]
    filled[dst] = True
    log.info("arrays for %d of %d frames from cache %s", len(dst), len(samples), best)
    return filled


def from_samples(samples: list[Sample], spec: PreprocessSpec, progress=None, multiclass: bool = False,
                 workers: int = 1, cache_dir: str | Path | None = None) -> ArraySet:
    if not samples:
        raise DatasetError("no samples to load")
    samples = list(samples)
    skey = _spec_key(spec, multiclass)
    cache = Path(cache_dir) / f"arrays-{sample_key(samples, spec, multiclass)}-{skey}.npz" if cache_dir else None
    meta = ([s.group for s in samples], [str(s.image) + (f"#{s.view}" if s.view != "frame" else "") for s in samples],
            [s.dataset for s in samples])
    n, H, W = len(samples), spec.input_height, spec.input_width
    images = np.zeros((n, H, W, 3), np.uint8)
    masks = np.zeros((n, H, W), np.float32)
    labels = np.zeros(n, np.int64)
    has_mask = np.zeros(n, bool)
    filled = np.zeros(n, bool)
    if cache is not None and cache.parent.is_dir():
        filled = _from_cached_rows(samples, cache.parent, skey, (images, masks, labels, has_mask))
        if filled.all():
            return ArraySet(images, masks, labels, has_mask, *meta[:2], np.zeros(n, bool), meta[2])
    todo = np.flatnonzero(~filled)
    jobs = [(samples[i], spec, multiclass) for i in todo]
    workers = max(1, min(workers, os.cpu_count() or 1))
    with ProcessPoolExecutor(workers) if workers > 1 else _Serial() as ex:
        for k, (i, r) in enumerate(zip(todo, ex.map(_one, jobs, chunksize=16))):
            images[i], masks[i], labels[i], has_mask[i] = r
            if progress is not None:
                progress(k + 1, len(todo))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, images=images, masks=np.round(masks * 255).astype(np.uint8), labels=labels, has_mask=has_mask,
                 keys=np.array([row_key(s) for s in samples]))
        tmp.replace(cache)
    return ArraySet(images, masks, labels, has_mask, *meta[:2], np.zeros(n, bool), meta[2])


def from_synthetic(count: int, spec: PreprocessSpec, seed: int = 1000) -> ArraySet:
    """``count`` generated frames, about half with a polyp, from seeds ``seed``, ``seed+1``, ...

    Seeds from 1000 up are kept for training (2000 up for validation); demos, tests and measurements use
    small seeds.
    """
    from engines.synthetic import SceneRenderer, SynthParams
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
                    ["synthetic"] * n, [it[2] for it in items], np.ones(n, bool), ["synthetic"] * n)


class _Serial:
    """``ProcessPoolExecutor``'s map, in this process (one worker)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def map(self, fn, items, chunksize: int = 1):
        return map(fn, items)
