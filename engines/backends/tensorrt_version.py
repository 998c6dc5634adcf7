"""The TensorRT versions tools/build_engine and the TensorRT backend support: the ``tensorrt`` extra of
pyproject.toml (one place), checked when TensorRT is imported, with a message that names both versions."""
from __future__ import annotations

import re

from engines.errors import PolypwatchError

SUPPORTED = ">=10.0,<12"          # the same as pyproject.toml's tensorrt extra (a test compares them)

# Every TensorRT name tools/build_engine and the TensorRT backend use, module-level names, enum members, methods and
# properties alike, as ``Class.member`` of NVIDIA's Python bindings. Each is in TensorRT 10.0, 10.16 and 11.1 (the
# review of issue 48 against NVIDIA's bindings and the TensorRT 11 migration guide; none is deprecated there). The
# test stand-in (tests/standin/tensorrt) implements exactly these and records what a build and a run read: the test
# suite checks the two lists are the same, and checks this list against the real package wherever it imports.
API = (
    "Logger", "Logger.WARNING",
    "Builder", "Builder.create_network", "Builder.create_builder_config", "Builder.create_optimization_profile",
    "Builder.build_serialized_network",
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED",
    "OnnxParser", "OnnxParser.parse", "OnnxParser.num_errors", "OnnxParser.get_error",
    "IBuilderConfig.set_memory_pool_limit", "IBuilderConfig.add_optimization_profile",
    "IBuilderConfig.create_timing_cache", "IBuilderConfig.set_timing_cache",
    "MemoryPoolType.WORKSPACE",
    "IOptimizationProfile.set_shape",
    "ITimingCache.serialize",
    "Runtime", "Runtime.deserialize_cuda_engine",
    "ICudaEngine.num_io_tensors", "ICudaEngine.get_tensor_name", "ICudaEngine.get_tensor_mode",
    "ICudaEngine.get_tensor_dtype", "ICudaEngine.create_execution_context",
    "TensorIOMode.INPUT", "DataType.FLOAT",
    "IExecutionContext.set_input_shape", "IExecutionContext.get_tensor_shape",
    "IExecutionContext.set_tensor_address", "IExecutionContext.execute_async_v3",
)


class TensorRTVersionError(PolypwatchError):
    """TensorRT is missing or outside the supported range."""


def _bounds(spec: str = SUPPORTED) -> tuple[tuple[int, ...], tuple[int, ...]]:
    lo = re.search(r">=\s*([\d.]+)", spec).group(1)
    hi = re.search(r"<\s*([\d.]+)", spec).group(1)
    return tuple(int(v) for v in lo.split(".")), tuple(int(v) for v in hi.split("."))


def supported(version: str) -> bool:
    nums = tuple(int(v) for v in re.findall(r"\d+", version)[:3])
    lo, hi = _bounds()
    return lo <= nums < hi


def check_version(version: str) -> None:
    if not supported(version):
        raise TensorRTVersionError(f"TensorRT {version} is outside the supported range {SUPPORTED} "
                                   f"(pip install 'polypwatch[tensorrt]' on the GPU machine)")


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise TensorRTVersionError("TensorRT is not installed: install NVIDIA's tensorrt wheels on the GPU machine "
                                   f"(pip install 'polypwatch[tensorrt]', TensorRT {SUPPORTED}); the CPU path needs "
                                   "no engine") from None
    check_version(trt.__version__)
    return trt
