"""TensorRT backend placeholder until the GPU-engines issue: reports unavailability clearly."""
from __future__ import annotations

from engines.backends.protocol import BackendBase
from stream.errors import BackendError


def tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


class TensorRTBackend(BackendBase):
    name = "tensorrt"

    def __init__(self, *args, **kwargs):
        raise BackendError("the TensorRT backend is not built yet (see the GPU-engines issue); "
                           "use engine.backend: onnxruntime or torch")
