"""What a training run ran on, written into metrics.json: the machine's numeric environment and a fingerprint of the
exact input arrays.

Why: the same tools/train command has given different models in different sessions (docs/MODEL_CARD.md, the
leave-one-source-out section) while repeating to the digit within one. Two runs with the same data fingerprint and
different results point at the numerics (another CPU kernel path, another torch); two different fingerprints point at
the rendering of the inputs. Either way the run's record says which.
"""
from __future__ import annotations

import hashlib
import platform

import numpy as np

from engines.runtime.cpu import cpu_info


def array_fingerprint(images: np.ndarray, masks: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) over the rows' preprocessed pixels, masks (as stored: 0..255) and labels, with
    their shapes: equal fingerprints mean the network saw the same inputs."""
    if masks.dtype != np.uint8:
        masks = np.round(masks * 255).astype(np.uint8)
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(images, np.uint8), np.ascontiguousarray(masks), np.ascontiguousarray(labels, np.int64)):
        h.update(repr(a.shape).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


def environment() -> dict:
    """The numeric environment: torch, numpy and OpenCV versions, the CPU kernel path torch chose (AVX2, AVX512...),
    whether OpenCV's instruction-set dispatch is on (it changes rendered pixels: ``cv2.setUseOptimized(False)``
    changed 3% of frames by up to 2 grey levels in session 12), the threads, the CPU and machine."""
    import cv2
    import torch
    return {"torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
            "python": platform.python_version(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "opencv_optimized": bool(cv2.useOptimized()), "torch_threads": torch.get_num_threads(),
            **cpu_info().summary(), "machine": platform.machine()}


def provenance(tr_set, va_set) -> dict:
    """``environment()`` plus the fingerprints of the training and validation arrays (engines.lab.data.arrays
    ArraySet)."""
    return {"environment": environment(),
            "data_fingerprint": {name: array_fingerprint(s.images, s.masks, s.labels)
                                 for name, s in (("train", tr_set), ("val", va_set))}}
