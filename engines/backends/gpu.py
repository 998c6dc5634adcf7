"""Which CUDA GPU is here: asked of torch before any TensorRT object exists (the lean runtime crashes without one)."""
from __future__ import annotations

from engines.backends.engine_sidecar import GpuInfo
from engines.errors import BackendError


class NoGpuError(BackendError):
    """No CUDA GPU (or no CUDA runtime) is available."""


def gpu_info() -> GpuInfo:
    """The CUDA GPU torch sees."""
    try:
        import torch
    except ImportError:
        raise NoGpuError("no CUDA runtime: torch is not installed, so no GPU can be found") from None
    if not torch.cuda.is_available():
        raise NoGpuError("no NVIDIA GPU: CUDA reports no device; TensorRT engines are built on the GPU that "
                         "will run them")
    major, minor = torch.cuda.get_device_capability(0)
    return GpuInfo(name=torch.cuda.get_device_name(0), compute_capability=f"{major}.{minor}")
