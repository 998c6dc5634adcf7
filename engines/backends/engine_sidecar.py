"""The JSON sidecar of a TensorRT engine: a complete cache key and what the runtime must check.

An engine is tied to one GPU model (compute capability), one TensorRT version and one ONNX file; the
runtime refuses an engine whose sidecar does not match instead of misbehaving. The sidecar also carries the
engine file's own hash (``engine_sha256``, version 2): an engine replaced after its sidecar was written (a build
that died half way, a file copied over) is refused, never loaded under another engine's "passed".
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engines.errors import ModelError

FORMAT = "polypwatch-tensorrt-engine"
VERSION = 2                     # 2: engine_sha256 (version 1 sidecars are refused: rebuild)
PRECISIONS = ("fp32", "fp16", "int8")


class EngineMismatch(ModelError):
    """The engine was built for another GPU, TensorRT version or model."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: str        # "9.0"


@dataclass(frozen=True)
class Sidecar:
    onnx_sha256: str
    onnx_name: str
    tensorrt_version: str
    gpu: GpuInfo
    precision: str
    input_name: str
    input_shapes: dict              # {"min": [..], "opt": [..], "max": [..]}
    workspace_mb: int
    calibration_sha256: str = ""    # int8: the calibration cache the engine was built from
    model_metadata: str = ""        # the ONNX file's polypwatch metadata (preprocessing, threshold) as JSON
    build_time: str = ""
    check: dict = field(default_factory=dict)    # parity with ONNX Runtime after the build
    engine_sha256: str = ""         # the engine file this sidecar describes
    timing_cache: str = ""          # what became of --timing-cache: "", "used", or why it was not used

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ModelError(f"engine sidecar precision: expected one of {PRECISIONS}, got {self.precision!r}")

    def cache_key(self) -> str:
        """Everything that changes the engine's bytes or validity; identical key = reusable engine."""
        key = {"onnx_sha256": self.onnx_sha256, "tensorrt_version": self.tensorrt_version,
               "gpu": self.gpu.name, "compute_capability": self.gpu.compute_capability,
               "precision": self.precision, "input_shapes": self.input_shapes, "workspace_mb": self.workspace_mb,
               "calibration_sha256": self.calibration_sha256}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def to_json(self) -> str:
        d = asdict(self)
        d.update(format=FORMAT, version=VERSION, cache_key=self.cache_key())
        return json.dumps(d, indent=1, sort_keys=True)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())


def sidecar_path(engine_path: str | Path) -> Path:
    return Path(str(engine_path) + ".json")


def read_sidecar(path: str | Path) -> Sidecar:
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"engine sidecar {path}: not found (rebuild the engine with tools/build_engine)") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"engine sidecar {path}: unreadable ({e})") from None
    if d.get("format") != FORMAT or d.get("version") != VERSION:
        raise ModelError(f"engine sidecar {path}: expected format {FORMAT!r} version {VERSION}, "
                         f"got {d.get('format')!r} version {d.get('version')!r} (rebuild the engine with "
                         f"tools/build_engine)")
    try:
        s = Sidecar(onnx_sha256=d["onnx_sha256"], onnx_name=d["onnx_name"], tensorrt_version=d["tensorrt_version"],
                    gpu=GpuInfo(**d["gpu"]), precision=d["precision"], input_name=d["input_name"],
                    input_shapes=d["input_shapes"], workspace_mb=int(d["workspace_mb"]),
                    calibration_sha256=d.get("calibration_sha256", ""), model_metadata=d.get("model_metadata", ""),
                    build_time=d.get("build_time", ""), check=d.get("check", {}),
                    engine_sha256=d["engine_sha256"], timing_cache=d.get("timing_cache", ""))
    except (KeyError, TypeError) as e:
        raise ModelError(f"engine sidecar {path}: missing or malformed field ({e})") from None
    if d.get("cache_key") != s.cache_key():
        raise ModelError(f"engine sidecar {path}: cache key does not match its fields (edited by hand?)")
    return s


def check_compatible(s: Sidecar, gpu: GpuInfo, tensorrt_version: str, onnx_sha256: str, engine_path: str = "") -> None:
    """Raise EngineMismatch, saying how to rebuild, unless the engine fits this GPU, TensorRT and model."""
    how = f"rebuild it here: tools/build_engine --onnx MODEL.onnx --precision {s.precision} --out {engine_path or 'ENGINE'}"
    if s.gpu.compute_capability != gpu.compute_capability or s.gpu.name != gpu.name:
        raise EngineMismatch(f"engine {engine_path} was built for {s.gpu.name} (compute capability "
                             f"{s.gpu.compute_capability}), this GPU is {gpu.name} ({gpu.compute_capability}); {how}")
    if s.tensorrt_version != tensorrt_version:
        raise EngineMismatch(f"engine {engine_path} was built with TensorRT {s.tensorrt_version}, this is "
                             f"TensorRT {tensorrt_version}; {how}")
    if s.onnx_sha256 != onnx_sha256:
        raise EngineMismatch(f"engine {engine_path} was built from another model (sha256 {s.onnx_sha256[:12]}…, the "
                             f"configured model is {onnx_sha256[:12]}…); {how}")


def check_engine_file(s: Sidecar, engine_sha256: str, engine_path: str = "") -> None:
    """Raise EngineMismatch unless the engine file is the one the sidecar was written for."""
    if s.engine_sha256 != engine_sha256:
        raise EngineMismatch(f"engine {engine_path} is not the engine its sidecar describes (sha256 "
                             f"{engine_sha256[:12]}…, the sidecar's {s.engine_sha256[:12] or 'none'}…): it was "
                             f"replaced after its sidecar was written (a build that stopped half way?); it is not "
                             f"loaded; rebuild it: tools/build_engine --precision {s.precision} --out "
                             f"{engine_path or 'ENGINE'}")


def check_passed(s: Sidecar, engine_path: str = "") -> None:
    """Raise EngineMismatch unless the engine passed its parity check with ONNX Runtime when it was built."""
    c = s.check
    how = f"rebuild it: tools/build_engine --precision {s.precision} --out {engine_path or 'ENGINE'}"
    if not c:
        raise EngineMismatch(f"engine {engine_path}: its sidecar records no check against ONNX Runtime; {how}")
    if not c.get("passed"):
        raise EngineMismatch(f"engine {engine_path} failed its check when it was built: max |score difference| vs "
                             f"ONNX Runtime {c.get('max_abs_score_diff')} > tolerance {c.get('tolerance')} on "
                             f"{c.get('frames')} frames (alert decisions agree on "
                             f"{c.get('alert_decision_agreement')}); it is not loaded; {how}")


def batch_range(s: Sidecar) -> tuple[int, int]:
    """(min, max) batch of the engine's optimisation profile."""
    return int(s.input_shapes["min"][0]), int(s.input_shapes["max"][0])


def check_batch(s: Sidecar, batch: int, engine_path: str = "") -> None:
    """Raise EngineMismatch naming both when ``batch`` (engine.batch_size) is outside the engine's profile."""
    lo, hi = batch_range(s)
    if not lo <= batch <= hi:
        raise EngineMismatch(f"engine.batch_size {batch}: engine {engine_path} takes batches of {lo} to {hi} (its "
                             f"optimisation profile); set engine.batch_size to at most {hi}, or rebuild it with "
                             f"tools/build_engine --batch 1,1,{batch}")
