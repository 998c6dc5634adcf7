"""The TensorRT versions tools/build_engine and the TensorRT backend support: the ``tensorrt`` extra of
pyproject.toml (one place), checked when TensorRT is imported, with a message that names both versions."""
from __future__ import annotations

import re

from engines.errors import PolypwatchError

SUPPORTED = ">=10.0,<12"          # the same as pyproject.toml's tensorrt extra (a test compares them)

# every TensorRT name the build and the backend use: checked against the real package where it installs
API = ("Logger", "Logger.WARNING", "Builder", "OnnxParser", "NetworkDefinitionCreationFlag.STRONGLY_TYPED",
       "MemoryPoolType.WORKSPACE", "Runtime", "TensorIOMode.INPUT")


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
