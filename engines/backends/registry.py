"""Choosing a backend by name: a small registry, never a flag per format."""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Callable

from engines.backends.protocol import Backend
from engines.errors import BackendError

log = logging.getLogger(__name__)

# name -> (module, class); imported on demand so that a missing optional dependency only matters when used
_REGISTRY: dict[str, tuple[str, str]] = {
    "onnxruntime": ("engines.backends.onnxruntime_backend", "OnnxRuntimeBackend"),
    "torch": ("engines.backends.torch_backend", "TorchBackend"),
    "tensorrt": ("engines.backends.tensorrt_backend", "TensorRTBackend"),
}
BACKEND_NAMES = ("auto", *_REGISTRY)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def available_backends() -> list[str]:
    out = []
    for name, (mod, _) in _REGISTRY.items():
        try:
            importlib.import_module(mod)
        except ImportError:
            continue
        if name == "tensorrt":
            from engines.backends.tensorrt_backend import tensorrt_available
            if not tensorrt_available():
                continue
        if name == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                continue
        out.append(name)
    return out


def resolve_backend_name(name: str, engine_file: str | Path | None = None) -> str:
    """``auto``: TensorRT when an engine file is configured and usable, torch on a CUDA GPU, else ONNX Runtime."""
    if name != "auto":
        if name not in _REGISTRY:
            raise BackendError(f"engine.backend: expected one of {BACKEND_NAMES}, got {name!r}")
        return name
    if engine_file and "tensorrt" in available_backends():
        return "tensorrt"
    if _cuda_available():
        return "torch"
    return "onnxruntime"


def _backend_class(name: str):
    if name not in _REGISTRY:
        raise BackendError(f"engine.backend: expected one of {BACKEND_NAMES}, got {name!r}")
    mod, cls = _REGISTRY[name]
    try:
        module = importlib.import_module(mod)
    except ImportError as e:
        raise BackendError(f"backend {name!r} is not installed here ({e})") from None
    return getattr(module, cls)


def create_backend(name: str, factory_kwargs: dict) -> Backend:
    """Instantiate (not open) the backend ``name`` with its keyword arguments."""
    factory: Callable[..., Backend] = _backend_class(name)
    return factory(**factory_kwargs)


def backend_from_config(name: str, engine_cfg, model_path: Path, meta) -> Backend:
    """Instantiate (not open) the backend ``name`` for the ``engine:`` section: each backend builds its own options
    (``from_config``), so no caller branches on a backend's name."""
    return _backend_class(name).from_config(engine_cfg, model_path, meta)
