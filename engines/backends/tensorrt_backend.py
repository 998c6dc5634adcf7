"""TensorRT backend: a prebuilt engine, checked against this GPU, TensorRT version, model and its own sidecar before
use.

Buffers are allocated once per input shape on the backend's device (engines/backends/trt_device.py: CUDA tensors
and pinned host staging on a GPU; CPU tensors under the test stand-in). Per call: the shape and tensor addresses
bound, one host copy into staging, async copy in, execute_async_v3 on the backend's own stream, async copy out, one
synchronise. With ``engine.device_preprocess`` the whole frame path runs as in the torch backend (engines/backends/
frame_graph.py): uint8 frame upload, preprocessing and execute_async_v3 captured in one CUDA graph per frame size.
The frame path has buffers of its own that live as long as its graphs (a graph keeps the addresses it was captured
with), so a batch of another size through ``infer`` never frees memory a graph still points at.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engines.backends.engine_sidecar import (
    Sidecar,
    batch_range,
    check_batch,
    check_compatible,
    check_engine_file,
    check_passed,
    read_sidecar,
    sha256_file,
    sidecar_path,
)
from engines.backends.gpu import NoGpuError
from engines.backends.protocol import BackendBase
from engines.errors import BackendError, ModelError

log = logging.getLogger(__name__)


def tensorrt_available() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def engine_description(engine_path: str | Path):
    """(precision, the metadata the engine runs with) from an engine's sidecar, or ("", None) where it has none
    yet: what the detector reports and which threshold it alerts at (an int8 twin may carry its own)."""
    from engines.runtime.metadata import ModelMetadata
    try:
        s = read_sidecar(sidecar_path(engine_path))
    except ModelError:
        return "", None                      # open() says what is wrong with it
    meta = ModelMetadata.from_json(s.model_metadata, f"engine sidecar {engine_path}") if s.model_metadata else None
    return s.precision, meta


class TensorRTBackend(BackendBase):
    name = "tensorrt"

    @classmethod
    def from_config(cls, engine_cfg, model_path: Path, meta) -> "TensorRTBackend":
        """Its options from the ``engine:`` section (the registry calls this)."""
        return cls(engine_cfg.engine_file, model_path, max_batch=engine_cfg.batch_size)

    def __init__(self, engine_path: str | Path, onnx_path: str | Path, max_batch: int = 1, unchecked: bool = False,
                 sidecar: Sidecar | None = None):
        """``max_batch``: the largest batch the caller will send (engine.batch_size), checked against the engine's
        profile at open. ``unchecked`` and ``sidecar``: only tools/build_engine, to run the parity check of an engine
        whose sidecar is still in its hands (nothing is on disk yet, and no check is recorded)."""
        if not engine_path:
            raise BackendError("engine.engine_file: a TensorRT engine is needed (build it with tools/build_engine)")
        self.engine_path = Path(engine_path)
        self.onnx_path = Path(onnx_path)
        self.max_batch = max_batch
        self.unchecked = unchecked
        self._given_sidecar = sidecar
        self.numerics, self.metadata = engine_description(self.engine_path) if sidecar is None else (
            sidecar.precision, None)
        self._context = None
        self._frame_graph = None

    def open(self) -> "TensorRTBackend":
        from engines.backends.tensorrt_version import TensorRTVersionError, import_tensorrt
        from engines.backends.trt_device import tensorrt_device
        try:
            trt = import_tensorrt()
        except TensorRTVersionError as e:
            raise BackendError(f"TensorRT backend: {e}") from None
        try:
            device = tensorrt_device(trt)      # before any TensorRT object: the lean runtime crashes without a GPU
        except NoGpuError as e:
            raise BackendError(f"TensorRT backend: {e}") from None
        if not self.engine_path.is_file():
            raise ModelError(f"engine {self.engine_path}: file not found")
        sidecar = self._given_sidecar or read_sidecar(sidecar_path(self.engine_path))
        check_compatible(sidecar, device.gpu, trt.__version__, sha256_file(self.onnx_path), str(self.engine_path))
        check_engine_file(sidecar, sha256_file(self.engine_path), str(self.engine_path))
        if not self.unchecked:
            check_passed(sidecar, str(self.engine_path))
        check_batch(sidecar, self.max_batch, str(self.engine_path))
        self._batches = batch_range(sidecar)
        import torch
        self._torch, self._device = torch, device
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            raise ModelError(f"engine {self.engine_path}: TensorRT could not deserialise it; rebuild it")
        self._inputs, self._outputs = [], []
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            (self._inputs if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else self._outputs).append(name)
        self._check_io_types(trt)
        context = self._engine.create_execution_context()
        if context is None:
            raise ModelError(f"engine {self.engine_path}: TensorRT could not create an execution context (out of "
                             f"device memory?)")
        self._context = context
        self._stream = device.new_stream()
        self._bufs: dict = {}
        self._shape = None
        self._graph_bufs: dict = {}
        self._bound = None                 # the buffers the context points at now
        return self

    def _check_io_types(self, trt) -> None:
        """The backend feeds float32 and reads float32: an engine with other I/O types is refused, not misread."""
        if len(self._inputs) != 1:
            raise ModelError(f"engine {self.engine_path}: expected one input tensor, got {self._inputs}")
        bad = [(n, self._engine.get_tensor_dtype(n)) for n in (*self._inputs, *self._outputs)
               if self._engine.get_tensor_dtype(n) != trt.DataType.FLOAT]
        if bad:
            raise ModelError(f"engine {self.engine_path}: tensor {bad[0][0]!r} is {bad[0][1]}, expected float32 inputs "
                             f"and outputs (DataType.FLOAT); build it from an ONNX file with float32 I/O (tools/"
                             f"build_engine keeps fp16 and int8 inside the network)")

    def _set_shape(self, shape: tuple[int, ...]) -> None:
        """The input shape for the next calls, checked against the profile; TensorRT's own refusal is an error too."""
        lo, hi = self._batches
        if not lo <= shape[0] <= hi:
            raise BackendError(f"tensorrt backend: a batch of {shape[0]} frames; engine {self.engine_path.name} takes "
                               f"{lo} to {hi} (its optimisation profile)")
        if not self._context.set_input_shape(self._inputs[0], shape):
            raise BackendError(f"tensorrt backend: the engine refused input shape {tuple(shape)} for "
                               f"{self._inputs[0]!r} (its profile: batches {lo} to {hi})")

    def _buffers(self, shape: tuple[int, ...]) -> dict:
        """Device buffers for ``shape`` (the input and every output, float32)."""
        torch = self._torch
        self._set_shape(shape)
        bufs = {self._inputs[0]: self._device.empty(shape, torch.float32)}
        for out in self._outputs:
            bufs[out] = self._device.empty(tuple(self._context.get_tensor_shape(out)), torch.float32)
        return bufs

    def _bind(self, bufs: dict) -> None:
        """Point the context at ``bufs`` (the shape first: output shapes follow from it), only when another set of
        buffers was bound last: a frame in a steady state makes no shape or address call."""
        if self._bound is bufs:
            return
        self._set_shape(tuple(bufs[self._inputs[0]].shape))
        for n, t in bufs.items():
            if not self._context.set_tensor_address(n, t.data_ptr()):
                raise BackendError(f"tensorrt backend: the engine refused the address of tensor {n!r}")
        self._bound = bufs

    def _allocate(self, shape: tuple[int, ...]) -> None:
        torch = self._torch
        self._bufs = self._buffers(shape)
        self._host = {o: self._device.host(self._bufs[o].shape, torch.float32) for o in self._outputs}
        self._host_in = self._device.host(shape, torch.float32)
        self._host_in_np = self._host_in.numpy()
        self._shape = shape

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self._context is None:
            raise BackendError("tensorrt backend: infer() before open()")
        if self._shape != batch.shape:
            self._allocate(tuple(batch.shape))
        self._bind(self._bufs)
        np.copyto(self._host_in_np, batch)          # pageable -> pinned: the upload below is truly asynchronous
        with self._device.on(self._stream):
            self._bufs[self._inputs[0]].copy_(self._host_in, non_blocking=True)
            if not self._context.execute_async_v3(self._device.handle(self._stream)):
                raise BackendError("tensorrt backend: execute_async_v3 failed")
            for o in self._outputs:
                self._host[o].copy_(self._bufs[o], non_blocking=True)
        self._device.synchronize(self._stream)
        return {o: self._host[o].numpy().copy() for o in self._outputs}

    def _frame_graph_for(self, spec):
        if self._frame_graph is None:
            from engines.backends.frame_graph import FrameGraph
            self._graph_bufs = self._buffers((1, 3, spec.input_height, spec.input_width))
            self._frame_graph = FrameGraph(self._enqueue, spec, self._device.torch_device, self._torch.float32,
                                           tuple(self._outputs), use_graph=True,
                                           stream_context=lambda: self._device.on(self._stream))
        return self._frame_graph

    @property
    def graph_status(self) -> dict | None:
        """Whether the device frame path runs as CUDA graphs, and why not (run summary, written after close());
        None when unused."""
        if self._frame_graph is None:
            return getattr(self, "_closed_graph_status", None)
        return dict(self._frame_graph.graph_status)

    def prepare_image(self, shape: tuple[int, ...], spec) -> None:
        """Warm-up: the frame path's CUDA graphs for every pyramid level of this frame size."""
        self._frame_graph_for(spec).prepare(shape)

    def infer_image(self, image: np.ndarray, area, spec) -> dict[str, np.ndarray]:
        """The frame path on the device (engine.device_preprocess): see engines/backends/frame_graph.py."""
        if self._context is None:
            raise BackendError("tensorrt backend: infer_image() before open()")
        try:
            return self._frame_graph_for(spec).run(image, area)
        except RuntimeError as e:
            raise BackendError(f"tensorrt backend: inference failed ({e})") from None

    def _enqueue(self, x):
        """The engine as a callable for FrameGraph: input tensor in, output buffers out (the frame path's own), on
        torch's current stream: the capturing stream while a graph is recorded, else the backend's own."""
        bufs = self._graph_bufs
        self._bind(bufs)
        bufs[self._inputs[0]].copy_(x)
        stream = self._torch.cuda.current_stream() if self._device.kind == "cuda" else None
        if not self._context.execute_async_v3(self._device.handle(stream)):
            raise BackendError("tensorrt backend: execute_async_v3 failed")
        return tuple(bufs[o] for o in self._outputs)

    def close(self) -> None:
        self._closed_graph_status = self.graph_status
        self._frame_graph = None
        self._context = None
        self._engine = None
        self._bufs = {}
        self._graph_bufs = {}
        self._bound = None
