"""The protocol every inference backend follows (Polygraphy-style runner life cycle)."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """``with Backend(...) as be: outputs = be.infer(batch)``.

    ``infer`` takes an Nx3xHxW float32 batch and returns {output name: numpy array}; nothing else of the
    backend (tensors, sessions, streams) leaves it. ``from_config(engine_cfg, model_path, meta)`` builds the
    backend's own options from the ``engine:`` section (the registry calls it).
    """

    name: str

    @classmethod
    def from_config(cls, engine_cfg, model_path, meta) -> "Backend": ...

    def open(self) -> "Backend": ...

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Backend": ...

    def __exit__(self, *exc) -> None: ...


class BackendBase:
    """Context-manager plumbing shared by the backends."""

    name = "base"
    numerics = ""          # what runs, where the backend decides it (torch on CUDA: fp16; TensorRT: the engine's)
    metadata = None        # the ModelMetadata the backend runs with, where it differs from the model file's

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
