"""ONNX -> TensorRT engine, ahead of time: one straight sequence (check, the network's ONNX, parse, configure,
build, write, verify, sidecar).

TensorRT 10 and 11: the network is strongly typed (its precision is its ONNX file's: engines/compile/network_onnx.py),
no builder precision flag and no calibrator is used. The supported range is the ``tensorrt`` extra of pyproject.toml,
checked at start. The engine's parity with ONNX Runtime is recorded in the sidecar whether it passed or not; the
TensorRT backend refuses an engine whose check failed. The engine is written under a temporary name, checked,
then moved into place before its sidecar (which carries its hash): a build stopped at any point leaves no engine
that loads under another engine's check.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engines.backends.engine_sidecar import PRECISIONS, GpuInfo, Sidecar, sha256_file, sidecar_path
from engines.backends.gpu import NoGpuError
from engines.backends.trt_device import tensorrt_device
from engines.compile.network_onnx import NetworkError, network_onnx
from engines.backends.tensorrt_version import import_tensorrt
from engines.compile.calibration import CalibrationSet, calibration_batches
from engines.runtime.metadata import read_onnx_metadata
from engines.errors import CheckFailed, PolypwatchError

log = logging.getLogger(__name__)
TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2, "int8": 8e-2}    # max |score difference| vs ONNX Runtime fp32


class BuildError(PolypwatchError):
    """The engine could not be built (no GPU, no TensorRT, parser errors, empty build, unwritable output)."""


class EngineCheckFailed(BuildError, CheckFailed):
    """The engine was built but its scores differ from ONNX Runtime's by more than the tolerance."""


@dataclass(frozen=True)
class BuildOptions:
    onnx: Path
    out: Path
    precision: str = "fp16"
    workspace_mb: int = 1024
    batch: tuple[int, int, int] = (1, 1, 4)           # min / opt / max batch of the optimisation profile
    qdq: str = ""                                     # int8: the Q/DQ twin ('' = MODEL.int8-trt.onnx)
    timing_cache: str = ""
    checks: CalibrationSet | None = None              # frames for the parity checks (None = generated frames)
    check_count: int = 32
    tolerance: float = 0.0                            # 0 = TOLERANCE[precision]

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BuildError(f"--precision: expected one of {PRECISIONS}, got {self.precision!r}")
        if not (1 <= self.batch[0] <= self.batch[1] <= self.batch[2]):
            raise BuildError(f"--batch: expected 1 <= min <= opt <= max, got {self.batch}")
        if self.check_count < 1:
            raise BuildError(f"--check-count: expected at least 1, got {self.check_count}")


def check_output_writable(out: Path) -> None:
    parent = out.resolve().parent
    if not parent.is_dir():
        raise BuildError(f"--out: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise BuildError(f"--out: folder {parent} is not writable")


def parse_onnx(trt, builder, logger, onnx_path: Path):
    """A strongly typed network (TensorRT 10 and 11: explicit batch, the precision of the ONNX file's types)."""
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BuildError(f"ONNX parser: {len(errors)} error(s) in {onnx_path}:\n  " + "\n  ".join(errors))
    return network, parser


def build(opts: BuildOptions, trt=None, gpu: GpuInfo | None = None) -> Sidecar:
    """Build ``opts.out`` and its sidecar; raises BuildError with a clear message at the first problem, and when
    the engine fails its parity check. The engine is built under a temporary name, checked there (its sidecar held
    in memory), and only an engine that passed is moved into place, then its sidecar: whatever stops the build half
    way, the engine at ``opts.out`` either is the one its sidecar describes (hash) or is refused at load. An engine
    that failed its check is kept beside, as ``OUT.failed`` with its sidecar, and never replaces ``opts.out``."""
    check_output_writable(opts.out)
    if not opts.onnx.is_file():
        raise BuildError(f"--onnx {opts.onnx}: file not found")
    meta = read_onnx_metadata(opts.onnx)
    trt = trt or import_tensorrt()
    try:
        gpu = gpu or tensorrt_device(trt).gpu
    except NoGpuError as e:
        raise BuildError(str(e)) from None
    tolerance = opts.tolerance or TOLERANCE[opts.precision]
    frames = check_frames(opts, meta.preprocess)
    try:
        source, checks = network_onnx(opts.precision, opts.onnx, opts.out, frames, tolerance,
                                      Path(opts.qdq) if opts.qdq else None)
    except NetworkError as e:
        raise BuildError(str(e)) from None
    run_meta = read_onnx_metadata(source) if opts.precision == "int8" else meta    # the twin's own threshold
    partial = opts.out.with_name(f".{opts.out.name}.{os.getpid()}.partial")
    try:
        serialized, timing_state = _serialize(trt, opts, source, meta, gpu)
        partial.write_bytes(serialized)
        sidecar = Sidecar(onnx_sha256=sha256_file(opts.onnx), onnx_name=opts.onnx.name,
                          tensorrt_version=trt.__version__, gpu=gpu, precision=opts.precision,
                          input_name=meta.input_name,
                          input_shapes={k: list(_shape(meta, n)) for k, n in zip(("min", "opt", "max"), opts.batch)},
                          workspace_mb=opts.workspace_mb, calibration_sha256=checks.get("qdq_sha256", ""),
                          model_metadata=run_meta.to_json(),
                          build_time=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                          engine_sha256=sha256_file(partial), timing_cache=timing_state)
        sidecar = replace(sidecar, check={**verify(opts, partial, sidecar, frames, tolerance, run_meta), **checks})
        if not sidecar.check["passed"]:
            _keep_failed(partial, sidecar, opts.out)
        sidecar.write(sidecar_path(partial))
        os.replace(partial, opts.out)                                   # the engine, then the sidecar that names it
        os.replace(sidecar_path(partial), sidecar_path(opts.out))
    finally:
        partial.unlink(missing_ok=True)
        sidecar_path(partial).unlink(missing_ok=True)
    return sidecar


def _shape(meta, n: int) -> tuple[int, int, int, int]:
    return n, 3, meta.preprocess.input_height, meta.preprocess.input_width


def _serialize(trt, opts: BuildOptions, source: Path, meta, gpu: GpuInfo) -> tuple[bytes, str]:
    """TensorRT's build, one straight sequence: (the serialised engine, what became of the timing cache)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = parse_onnx(trt, builder, logger, source)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mb << 20)
    profile = builder.create_optimization_profile()
    profile.set_shape(meta.input_name, *(_shape(meta, n) for n in opts.batch))
    config.add_optimization_profile(profile)
    timing, state = None, ""
    if opts.timing_cache:
        tc = Path(opts.timing_cache)
        timing = config.create_timing_cache(tc.read_bytes() if tc.is_file() else b"")
        if config.set_timing_cache(timing, ignore_mismatch=False):
            state = "used"
        else:                       # made on another GPU or TensorRT: TensorRT will not use it, and it is kept
            state = (f"not used: TensorRT refused {tc} (made on another GPU or TensorRT version); the file is left "
                     f"as it was")
            log.warning("timing cache %s: %s", tc, state)
            timing = None
    log.info("building a strongly typed %s engine from %s for %s (this takes a while)", opts.precision, source.name,
             gpu.name)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError("TensorRT returned no engine (build_serialized_network gave None); see the TensorRT "
                         "log above for the failing layer")
    if timing is not None:
        Path(opts.timing_cache).write_bytes(bytes(timing.serialize()))
    return bytes(serialized), state


def _keep_failed(partial: Path, sidecar: Sidecar, out: Path) -> None:
    """An engine over the tolerance: kept as OUT.failed with its sidecar (passed: false), never at ``out``."""
    failed = out.with_name(out.name + ".failed")
    sidecar.write(sidecar_path(partial))
    os.replace(partial, failed)
    os.replace(sidecar_path(partial), sidecar_path(failed))
    c = sidecar.check
    kept = f"{out} is untouched" if out.exists() else f"nothing was written at {out}"
    raise EngineCheckFailed(f"engine check failed: max |score difference| vs ONNX Runtime {c['max_abs_score_diff']:.3g} "
                            f"> tolerance {c['tolerance']} on {c['frames']} frames (alert decisions agree on "
                            f"{c['alert_decision_agreement']:.1%}); the engine is kept for inspection as {failed} "
                            f"(marked failed in its sidecar, never loaded) and {kept}")


def check_frames(opts: BuildOptions, spec) -> np.ndarray:
    """Preprocessed frames for the parity checks: the given set (a folder, a video, the lab's validation frames),
    else generated colonoscopy frames."""
    if opts.checks is not None:
        return np.concatenate(list(calibration_batches(opts.checks, spec, opts.check_count, 8)))
    from engines.runtime.preprocess import preprocess
    from engines.synthetic import SceneRenderer, SynthParams
    r = SceneRenderer(SynthParams(seed=12345, seconds=60, width=960, height=540, fps=25))
    idx = np.linspace(0, r.params.frame_count - 1, opts.check_count).astype(int)
    return np.concatenate([preprocess(r.render(int(i)).image, spec).tensor for i in idx])


def compare(ref_scores: np.ndarray, test_scores: np.ndarray, threshold: float, tolerance: float,
            test_threshold: float | None = None) -> dict:
    """Parity figures; ``test_threshold``: the engine's own alert threshold where it differs (an int8 twin's)."""
    diff = float(np.abs(ref_scores - test_scores).max())
    t2 = threshold if test_threshold is None else test_threshold
    agree = float(((ref_scores >= threshold) == (test_scores >= t2)).mean())
    return {"frames": int(len(ref_scores)), "max_abs_score_diff": round(diff, 6),
            "alert_decision_agreement": round(agree, 4), "tolerance": tolerance,
            "passed": bool(diff <= tolerance)}


def verify(opts: BuildOptions, engine: Path, sidecar: Sidecar, x: np.ndarray, tolerance: float, run_meta) -> dict:
    """The new engine (opened with its sidecar in hand: none is on disk yet) and ONNX Runtime (fp32) on the same
    frames: the figures, passed or not."""
    from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
    from engines.backends.tensorrt_backend import TensorRTBackend
    meta = read_onnx_metadata(opts.onnx)
    with OnnxRuntimeBackend(opts.onnx) as ort_be, \
            TensorRTBackend(engine, opts.onnx, sidecar=sidecar, unchecked=True) as trt_be:
        ref = np.concatenate([ort_be.infer(x[i:i + 1])[meta.score_output] for i in range(len(x))])
        got = np.concatenate([trt_be.infer(x[i:i + 1])[meta.score_output] for i in range(len(x))])
    result = compare(ref, got, meta.threshold, tolerance, run_meta.threshold)
    log.info("engine check: max |score diff| %.2e, alert agreement %.3f", result["max_abs_score_diff"],
             result["alert_decision_agreement"])
    return result
