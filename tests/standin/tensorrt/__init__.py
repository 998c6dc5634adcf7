"""A TensorRT stand-in for tests: exactly the API polypwatch calls (``engines.backends.tensorrt_version.API``), no
more, shaped like TensorRT 10 and 11 (strongly typed networks, no BuilderFlag precision flags, no calibrators), with
engines that run their ONNX network through ONNX Runtime on the CPU.

It is faithful where the project could get TensorRT wrong: a parser that reports errors, a builder that refuses a
dynamic input without an optimisation profile and returns None on failure, a serialised engine that only the same
TensorRT version deserialises, tensor modes and dtypes read from the network, ``set_input_shape`` that refuses shapes
outside the profile, ``execute_async_v3`` that reads its inputs from and writes its outputs to the raw addresses set
with ``set_tensor_address`` (a wrong address, shape or dtype gives wrong results, as on a GPU), and a timing cache
that ``set_timing_cache`` refuses when it was made on another device.

``HOST_DEVICE`` tells the project that engines run on the host (engines/backends/trt_device.py): its buffers are
CPU tensors. ``__version__`` may be set by a test (10.x or 11.x). ``CALLED`` records every API name used, so a test
can compare it with the project's list. Put ``tests/standin`` on sys.path (or PYTHONPATH) to use it.
"""
from __future__ import annotations

import ctypes
import enum
import json

import numpy as np

__version__ = "10.16.0.stand-in"
HOST_DEVICE = ("polypwatch TensorRT stand-in (ONNX Runtime, CPU)", "0.0")
CALLED: set[str] = set()
MAGIC = b"POLYPWATCH-TRT-STANDIN\n"


def _used(name: str) -> None:
    CALLED.add(name)


class _Recorded:
    """Records each public attribute read as 'Class.name' (methods and properties alike)."""

    def __getattribute__(self, name):
        if not name.startswith("_"):
            CALLED.add(f"{type(self).__name__}.{name}")
        return object.__getattribute__(self, name)


class _Enum(enum.IntEnum):
    """An enum printed as the bindings print theirs: ``DataType.HALF``."""

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    __format__ = lambda self, spec: format(str(self), spec)  # noqa: E731


class _Severity(_Enum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class Logger(_Recorded):
    WARNING = _Severity.WARNING
    ERROR = _Severity.ERROR

    def __init__(self, min_severity=_Severity.WARNING):
        _used("Logger")
        self._min_severity = min_severity
        self._messages: list[str] = []

    def log(self, severity, msg: str) -> None:
        if severity <= self._min_severity:
            self._messages.append(msg)


def _log(logger: Logger, severity, msg: str) -> None:
    """The stand-in's own messages (not a call of the project's)."""
    Logger.log(logger, severity, msg)


class NetworkDefinitionCreationFlag(_Enum):
    STRONGLY_TYPED = 5


class MemoryPoolType(_Enum):
    WORKSPACE = 0


class TensorIOMode(_Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(_Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5


_ONNX_TO_TRT = {1: DataType.FLOAT, 10: DataType.HALF, 3: DataType.INT8, 6: DataType.INT32, 9: DataType.BOOL,
                2: DataType.UINT8}
_NUMPY = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8, DataType.INT32: np.int32,
          DataType.BOOL: np.bool_, DataType.UINT8: np.uint8}


class IHostMemory(_Recorded):
    def __init__(self, data: bytes):
        self._data = bytes(data)

    def __bytes__(self) -> bytes:
        return self._data

    @property
    def nbytes(self) -> int:
        return len(self._data)


class INetworkDefinition(_Recorded):
    def __init__(self, flags: int):
        self._flags = flags
        self._onnx: bytes | None = None
        self._io: list[dict] = []


class OnnxParser(_Recorded):
    def __init__(self, network: INetworkDefinition, logger: Logger):
        _used("OnnxParser")
        self._network, self._logger = network, logger
        self._errors: list[str] = []

    def parse(self, model: bytes) -> bool:
        import onnx
        try:
            proto = onnx.load_from_string(bytes(model))
            onnx.checker.check_model(proto)
        except Exception as e:                     # what TensorRT's parser reports: a list of errors, then False
            self._errors = [f"In node -1 (parseGraph): INVALID_GRAPH: {e}"]
            return False
        init = {i.name for i in proto.graph.initializer}
        io = []
        for mode, values in ((TensorIOMode.INPUT, proto.graph.input), (TensorIOMode.OUTPUT, proto.graph.output)):
            for v in values:
                if v.name in init:
                    continue
                t = v.type.tensor_type
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
                io.append({"name": v.name, "mode": int(mode), "dtype": int(_ONNX_TO_TRT.get(t.elem_type, -1)),
                           "shape": dims})
        self._network._onnx, self._network._io = bytes(model), io
        self._errors = []
        return True

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> str:
        return self._errors[index]


class IOptimizationProfile(_Recorded):
    def __init__(self):
        self._shapes: dict[str, tuple] = {}

    def set_shape(self, input: str, min, opt, max) -> None:
        mn, op, mx = (tuple(int(v) for v in s) for s in (min, opt, max))
        if not all(a <= b <= c for a, b, c in zip(mn, op, mx)):
            raise ValueError(f"IOptimizationProfile.set_shape: min <= opt <= max violated for {input}")
        self._shapes[input] = (mn, op, mx)


class ITimingCache(_Recorded):
    def __init__(self, device: str):
        self._device = device

    def serialize(self) -> IHostMemory:
        return IHostMemory(b"POLYPWATCH-TRT-STANDIN-CACHE:" + self._device.encode())


class IBuilderConfig(_Recorded):
    def __init__(self):
        self._pools: dict[int, int] = {}
        self._profiles: list[IOptimizationProfile] = []
        self._cache: ITimingCache | None = None

    def set_memory_pool_limit(self, pool_type, pool_size: int) -> None:
        self._pools[int(pool_type)] = int(pool_size)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        self._profiles.append(profile)
        return len(self._profiles) - 1

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
        data = bytes(serialized_timing_cache)
        if not data:
            return ITimingCache(HOST_DEVICE[0])
        prefix = b"POLYPWATCH-TRT-STANDIN-CACHE:"
        return ITimingCache(data[len(prefix):].decode(errors="replace") if data.startswith(prefix) else "?")

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if cache._device != HOST_DEVICE[0] and not ignore_mismatch:
            return False                            # TensorRT: a cache from another device is not used
        self._cache = cache
        return True


class Builder(_Recorded):
    def __init__(self, logger: Logger):
        _used("Builder")
        self._logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        if network._onnx is None:
            _log(self._logger, _Severity.ERROR, "build: the network is empty (nothing parsed)")
            return None
        shapes = {}
        for t in network._io:
            if t["mode"] != TensorIOMode.INPUT:
                continue
            prof = next((p._shapes[t["name"]] for p in config._profiles if t["name"] in p._shapes), None)
            if prof is None and -1 in t["shape"]:
                _log(self._logger, _Severity.ERROR, f"build: dynamic input {t['name']} has no optimisation profile")
                return None
            shapes[t["name"]] = prof or (tuple(t["shape"]),) * 3
        try:
            import onnxruntime as ort
            ort.InferenceSession(network._onnx, providers=["CPUExecutionProvider"])
        except Exception as e:
            _log(self._logger, _Severity.ERROR, f"build failed: {e}")
            return None
        header = {"tensorrt": __version__, "device": HOST_DEVICE[0], "io": network._io,
                  "profile": {k: [list(s) for s in v] for k, v in shapes.items()}}
        return IHostMemory(MAGIC + json.dumps(header).encode() + b"\n" + network._onnx)


class Runtime(_Recorded):
    def __init__(self, logger: Logger):
        _used("Runtime")
        self._logger = logger

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> "ICudaEngine | None":
        data = bytes(serialized_engine)
        if not data.startswith(MAGIC):
            _log(self._logger, _Severity.ERROR, "deserialize: not a serialized engine")
            return None
        head, _, onnx_bytes = data[len(MAGIC):].partition(b"\n")
        header = json.loads(head)
        if header["tensorrt"] != __version__:
            _log(self._logger, _Severity.ERROR, f"deserialize: engine built with TensorRT {header['tensorrt']}, this is "
                                              f"{__version__}")
            return None
        return ICudaEngine(header, onnx_bytes)


class ICudaEngine(_Recorded):
    def __init__(self, header: dict, onnx_bytes: bytes):
        self._io = header["io"]
        self._profile = {k: [tuple(s) for s in v] for k, v in header["profile"].items()}
        self._onnx = onnx_bytes
        self._shape_cache: dict = {}

    @property
    def num_io_tensors(self) -> int:
        return len(self._io)

    def get_tensor_name(self, index: int) -> str:
        return self._io[index]["name"]

    def _tensor(self, name: str) -> dict:
        return next(t for t in self._io if t["name"] == name)

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode(self._tensor(name)["mode"])

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType(self._tensor(name)["dtype"])

    def create_execution_context(self) -> "IExecutionContext":
        return IExecutionContext(self)


class IExecutionContext(_Recorded):
    def __init__(self, engine: ICudaEngine):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self._engine = engine
        self._session = ort.InferenceSession(engine._onnx, opts, providers=["CPUExecutionProvider"])
        self._shapes: dict[str, tuple] = {}
        self._output_shapes: dict[str, tuple] = {}
        self._addresses: dict[str, int] = {}

    def set_input_shape(self, name: str, shape) -> bool:
        shape = tuple(int(v) for v in shape)
        lo, _, hi = self._engine._profile[name]
        if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            return False
        self._shapes[name] = shape
        self._output_shapes = self._infer_shapes()
        return True

    def _infer_shapes(self) -> dict[str, tuple]:
        """Output shapes for the input shapes set (TensorRT's shape inference; here one run on zeros, cached)."""
        inputs = [t for t in self._engine._io if t["mode"] == TensorIOMode.INPUT]
        if any(t["name"] not in self._shapes for t in inputs):
            return {}
        key = tuple(self._shapes[t["name"]] for t in inputs)
        cache = self._engine._shape_cache
        if key not in cache:
            feed = {t["name"]: np.zeros(self._shapes[t["name"]], _NUMPY[DataType(t["dtype"])]) for t in inputs}
            outs = [t["name"] for t in self._engine._io if t["mode"] == TensorIOMode.OUTPUT]
            cache[key] = {n: tuple(r.shape) for n, r in zip(outs, self._session.run(outs, feed))}
        return cache[key]

    def get_tensor_shape(self, name: str) -> tuple:
        t = self._engine._tensor(name)
        if t["mode"] == TensorIOMode.INPUT:
            return self._shapes.get(name, tuple(t["shape"]))
        return self._output_shapes.get(name, tuple(t["shape"]))

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._engine._tensor(name)
        self._addresses[name] = int(memory)
        return True

    def _view(self, name: str) -> np.ndarray:
        t = self._engine._tensor(name)
        dtype = np.dtype(_NUMPY[DataType(t["dtype"])])
        shape = self.get_tensor_shape(name)
        n = int(np.prod(shape)) * dtype.itemsize
        buf = (ctypes.c_char * n).from_address(self._addresses[name])
        return np.frombuffer(buf, dtype=dtype).reshape(shape)

    def execute_async_v3(self, stream_handle: int) -> bool:
        inputs = [t for t in self._engine._io if t["mode"] == TensorIOMode.INPUT]
        outputs = [t for t in self._engine._io if t["mode"] == TensorIOMode.OUTPUT]
        if any(t["name"] not in self._addresses for t in self._engine._io) or any(
                t["name"] not in self._shapes for t in inputs):
            return False                            # TensorRT logs the missing address or shape and returns False
        feed = {t["name"]: self._view(t["name"]).copy() for t in inputs}
        results = self._session.run([t["name"] for t in outputs], feed)
        for t, r in zip(outputs, results):
            dst = self._view(t["name"])
            if dst.shape != r.shape:
                return False
            dst[...] = r
        return True


class _RecordingModule(type(ctypes)):
    """The module records its public names as they are read (tensorrt.Logger, tensorrt.DataType, ...)."""

    def __getattribute__(self, name):
        if not name.startswith("_") and name not in ("CALLED", "HOST_DEVICE", "MAGIC"):
            CALLED.add(name)
        return super().__getattribute__(name)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _RecordingModule
