"""Which numerics run the model on the CPU: the fp32 file or its INT8 twin (``engine.precision``).

A shipped model may have an INT8 twin beside it, ``<name>.int8.onnx`` (made by ``tools/quantize``: the same
preprocessing and outputs, its own metadata naming its calibration set). ``auto`` takes the twin where it exists and
the CPU has an 8-bit dot-product instruction (``engines.runtime.cpu``), fp32 otherwise; ``fp32`` and ``int8`` ask for
one. The choice, its reason and the file are logged when the detector starts and written into every summary,
metrics.json and QA report, so that a result always says which numerics produced it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engines.errors import ConfigError
from engines.runtime.cpu import CpuInfo, cpu_info

PRECISIONS = ("auto", "fp32", "int8")
TWIN_SUFFIX = ".int8.onnx"


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str                   # fp32 | int8: what runs
    model_path: Path                 # the file that runs
    reason: str

    def record(self) -> dict:
        return {"precision": self.precision, "precision_reason": self.reason, "model_file": str(self.model_path)}


def twin_path(model_path: Path, suffix: str) -> Path:
    """A file beside an fp32 model named after it: MODEL.onnx -> MODEL<suffix>."""
    name = model_path.name
    stem = name[:-len(".onnx")] if name.endswith(".onnx") else model_path.stem
    return model_path.with_name(stem + suffix)


def int8_twin(model_path: Path) -> Path:
    """Where the INT8 twin of an fp32 model file lies."""
    return twin_path(model_path, TWIN_SUFFIX)


def is_int8_file(model_path: Path) -> bool:
    return model_path.name.endswith(TWIN_SUFFIX)


def choose_precision(model_path: Path, requested: str, backend: str, cpu: CpuInfo | None = None) -> PrecisionChoice:
    """The file and numerics for ``engine.precision`` = ``requested`` with this backend on this CPU."""
    if requested not in PRECISIONS:
        raise ConfigError(f"engine.precision: expected one of {list(PRECISIONS)}, got {requested!r}")
    cpu = cpu or cpu_info()
    if is_int8_file(model_path):
        if requested == "fp32":
            raise ConfigError(f"engine.precision: fp32 asked for, but engine.model {model_path} is an INT8 file; "
                              f"configure its fp32 model or precision int8/auto")
        if backend != "onnxruntime":
            raise ConfigError(f"engine.model {model_path}: an INT8 ONNX file runs with engine.backend onnxruntime, "
                              f"not {backend!r}")
        return PrecisionChoice("int8", model_path, "engine.model is an INT8 file")
    twin = int8_twin(model_path)
    if backend != "onnxruntime":
        if requested == "int8":
            raise ConfigError(f"engine.precision: int8 runs with engine.backend onnxruntime, not {backend!r} "
                              f"(a TensorRT engine has its own precision: tools/build_engine --precision)")
        return PrecisionChoice("fp32", model_path, f"backend {backend}: its own precision (TensorRT: the engine's, "
                                                   f"torch: fp16 on a GPU)")
    if requested == "fp32":
        return PrecisionChoice("fp32", model_path, "asked for (engine.precision: fp32)")
    if requested == "int8":
        if not twin.is_file():
            raise ConfigError(f"engine.precision: int8 asked for, but {model_path.name} has no INT8 twin ({twin}); "
                              f"make one with tools/quantize, or set engine.precision: fp32")
        why = f"asked for (engine.precision: int8); this CPU's 8-bit dot product: {cpu.int8_dot or 'none, may be slower'}"
        return PrecisionChoice("int8", twin, why)
    if not twin.is_file():
        return PrecisionChoice("fp32", model_path, f"auto: {model_path.name} has no INT8 twin")
    if not cpu.int8_dot:
        return PrecisionChoice("fp32", model_path, f"auto: this CPU ({cpu.model}) has no 8-bit dot-product instruction "
                                                   f"(AVX-512 VNNI, AVX-VNNI, AMX): INT8 would not be faster")
    return PrecisionChoice("int8", twin, f"auto: INT8 twin found and this CPU has {cpu.int8_dot}")
