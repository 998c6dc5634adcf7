"""Where the TensorRT backend's buffers and stream live: the one seam between the backend and the hardware.

On a GPU (real TensorRT) buffers are CUDA tensors, host staging is pinned, work runs on the backend's own CUDA
stream and a call ends with that stream's synchronisation. A TensorRT stand-in that runs its engines on the host
(``tests/standin/tensorrt``: ONNX Runtime on the CPU) says so with a module attribute, ``HOST_DEVICE = (name,
compute capability)``; it then gets CPU tensors, no stream (handle 0) and no pinning, and everything else in the
backend and tools/build_engine runs unchanged. Real TensorRT has no such attribute.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from engines.backends.engine_sidecar import GpuInfo
from engines.backends.gpu import gpu_info


@dataclass(frozen=True)
class TrtDevice:
    gpu: GpuInfo
    kind: str                       # "cuda" | "host"

    @property
    def torch_device(self):
        import torch
        return torch.device("cuda" if self.kind == "cuda" else "cpu")

    def empty(self, shape, dtype):
        """A buffer TensorRT reads or writes through its address."""
        import torch
        return torch.empty(tuple(shape), dtype=dtype, device=self.torch_device)

    def host(self, shape, dtype):
        """Host staging: pinned on a GPU, so that copies are truly asynchronous."""
        import torch
        return torch.empty(tuple(shape), dtype=dtype, pin_memory=self.kind == "cuda")

    def new_stream(self):
        import torch
        return torch.cuda.Stream() if self.kind == "cuda" else None

    def handle(self, stream) -> int:
        """What execute_async_v3 takes: the CUDA stream's handle (0 on the host)."""
        return stream.cuda_stream if stream is not None else 0

    def on(self, stream):
        """A context in which torch's work goes to ``stream`` (nothing on the host)."""
        import torch
        return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()

    def synchronize(self, stream) -> None:
        if stream is not None:
            stream.synchronize()


def tensorrt_device(trt) -> TrtDevice:
    """The device the imported TensorRT module runs engines on; raises NoGpuError where that is a GPU and none is
    here (before any TensorRT object is made: the lean runtime crashes without one)."""
    host = getattr(trt, "HOST_DEVICE", None)
    if host is not None:
        name, capability = host
        return TrtDevice(GpuInfo(str(name), str(capability)), "host")
    return TrtDevice(gpu_info(), "cuda")
