"""TensorRT backend: a prebuilt engine, checked against this GPU, TensorRT version and model before use.

Buffers are allocated once (torch CUDA tensors, pinned host staging for input and outputs); per call: one host
copy into pinned memory, async copy in, execute_async_v3 on its own stream, async copy out, one synchronise.
With ``engine.device_preprocess`` the whole frame path runs as in the torch backend (engines/backends/
frame_graph.py): uint8 frame upload, preprocessing and execute_async_v3 captured in one CUDA graph per frame size.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engines.backends.engine_sidecar import (
    batch_range,
    check_batch,
    check_compatible,
    check_passed,
    read_sidecar,
    sha256_file,
    sidecar_path,
)
from engines.backends.gpu import NoGpuError, gpu_info
from engines.backends.protocol import BackendBase
from engines.errors import BackendError, ModelError

log = logging.getLogger(__name__)


def tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


class TensorRTBackend(BackendBase):
    name = "tensorrt"

    @classmethod
    def from_config(cls, engine_cfg, model_path: Path, meta) -> "TensorRTBackend":
        """Its options from the ``engine:`` section (the registry calls this)."""
        return cls(engine_cfg.engine_file, model_path, max_batch=engine_cfg.batch_size)

    def __init__(self, engine_path: str | Path, onnx_path: str | Path, max_batch: int = 1, unchecked: bool = False):
        """``max_batch``: the largest batch the caller will send (engine.batch_size), checked against the engine's
        profile at open. ``unchecked``: open an engine whose parity check is not (yet) recorded as passed: only
        tools/build_engine, to run that check."""
        if not engine_path:
            raise BackendError("engine.engine_file: a TensorRT engine is needed (build it with tools/build_engine)")
        self.engine_path = Path(engine_path)
        self.onnx_path = Path(onnx_path)
        self.max_batch = max_batch
        self.unchecked = unchecked
        self._context = None
        self._frame_graph = None

    def open(self) -> "TensorRTBackend":
        try:
            gpu = gpu_info()                   # before any TensorRT object: the lean runtime crashes without a GPU
        except NoGpuError as e:
            raise BackendError(f"TensorRT backend: {e}") from None
        if not self.engine_path.is_file():
            raise ModelError(f"engine {self.engine_path}: file not found")
        sidecar = read_sidecar(sidecar_path(self.engine_path))
        from engines.backends.tensorrt_version import TensorRTVersionError, import_tensorrt
        try:
            trt = import_tensorrt()
        except TensorRTVersionError as e:
            raise BackendError(f"TensorRT backend: {e}") from None
        check_compatible(sidecar, gpu, trt.__version__, sha256_file(self.onnx_path), str(self.engine_path))
        if not self.unchecked:
            check_passed(sidecar, str(self.engine_path))
        check_batch(sidecar, self.max_batch, str(self.engine_path))
        self._batches = batch_range(sidecar)
        import torch
        self._torch = torch
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            raise ModelError(f"engine {self.engine_path}: TensorRT could not deserialise it; rebuild it")
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        self._inputs, self._outputs = [], []
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            (self._inputs if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else self._outputs).append(name)
        self._bufs: dict = {}
        self._shape = None
        return self

    def _set_shape(self, shape: tuple[int, ...]) -> None:
        """The input shape for the next calls, checked against the profile; TensorRT's own refusal is an error too."""
        lo, hi = self._batches
        if not lo <= shape[0] <= hi:
            raise BackendError(f"tensorrt backend: a batch of {shape[0]} frames; engine {self.engine_path.name} takes "
                               f"{lo} to {hi} (its optimisation profile)")
        if not self._context.set_input_shape(self._inputs[0], shape):
            raise BackendError(f"tensorrt backend: the engine refused input shape {tuple(shape)} for "
                               f"{self._inputs[0]!r} (its profile: batches {lo} to {hi})")

    def _allocate(self, shape: tuple[int, ...]) -> None:
        torch = self._torch
        name = self._inputs[0]
        self._set_shape(shape)
        self._bufs = {name: torch.empty(shape, dtype=torch.float32, device="cuda")}
        for out in self._outputs:
            oshape = tuple(self._context.get_tensor_shape(out))
            self._bufs[out] = torch.empty(oshape, dtype=torch.float32, device="cuda")
        for n, t in self._bufs.items():
            self._context.set_tensor_address(n, t.data_ptr())
        self._host = {o: torch.empty(self._bufs[o].shape, dtype=torch.float32, pin_memory=True) for o in self._outputs}
        self._host_in = torch.empty(shape, dtype=torch.float32, pin_memory=True)
        self._host_in_np = self._host_in.numpy()
        self._shape = shape

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self._context is None:
            raise BackendError("tensorrt backend: infer() before open()")
        torch = self._torch
        if self._shape != batch.shape:
            self._allocate(tuple(batch.shape))
        np.copyto(self._host_in_np, batch)          # pageable -> pinned: the upload below is truly asynchronous
        with torch.cuda.stream(self._stream):
            self._bufs[self._inputs[0]].copy_(self._host_in, non_blocking=True)
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise BackendError("tensorrt backend: execute_async_v3 failed")
            for o in self._outputs:
                self._host[o].copy_(self._bufs[o], non_blocking=True)
        self._stream.synchronize()
        return {o: self._host[o].numpy().copy() for o in self._outputs}

    def _frame_graph_for(self, spec):
        if self._frame_graph is None:
            from engines.backends.frame_graph import FrameGraph
            self._allocate((1, 3, spec.input_height, spec.input_width))
            self._frame_graph = FrameGraph(self._enqueue, spec, self._torch.device("cuda"), self._torch.float32,
                                           tuple(self._outputs), use_graph=True)
        return self._frame_graph

    @property
    def graph_status(self) -> dict | None:
        """Whether the device frame path runs as CUDA graphs, and why not (run summary); None when unused."""
        return None if self._frame_graph is None else dict(self._frame_graph.graph_status)

    def prepare_image(self, shape: tuple[int, ...], spec) -> None:
        """Warm-up: the frame path's CUDA graphs for every pyramid level of this frame size."""
        self._frame_graph_for(spec).prepare(shape)

    def infer_image(self, image: np.ndarray, area, spec) -> dict[str, np.ndarray]:
        """The frame path on the GPU (engine.device_preprocess): see engines/backends/frame_graph.py."""
        if self._context is None:
            raise BackendError("tensorrt backend: infer_image() before open()")
        try:
            return self._frame_graph_for(spec).run(image, area)
        except RuntimeError as e:
            raise BackendError(f"tensorrt backend: inference failed ({e})") from None

    def _enqueue(self, x):
        """The engine as a callable for FrameGraph: input tensor in, output buffers out, on the current stream
        (the capturing stream while the graph is recorded)."""
        self._bufs[self._inputs[0]].copy_(x)
        if not self._context.execute_async_v3(self._torch.cuda.current_stream().cuda_stream):
            raise BackendError("tensorrt backend: execute_async_v3 failed")
        return tuple(self._bufs[o] for o in self._outputs)

    def close(self) -> None:
        self._frame_graph = None
        self._context = None
        self._engine = None
        self._bufs = {}
