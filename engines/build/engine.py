"""ONNX -> TensorRT engine, ahead of time: one straight sequence (check, parse, configure, build, write, verify)."""
from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from engines.backends.engine_sidecar import PRECISIONS, GpuInfo, Sidecar, sha256_file, sidecar_path
from engines.backends.gpu import NoGpuError, gpu_info
from engines.runtime.metadata import read_onnx_metadata
from engines.errors import PolypwatchError

log = logging.getLogger(__name__)
TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2, "int8": 8e-2}    # max |score difference| vs ONNX Runtime


class BuildError(PolypwatchError):
    """The engine could not be built (no GPU, no TensorRT, parser errors, empty build, unwritable output)."""


@dataclass(frozen=True)
class BuildOptions:
    onnx: Path
    out: Path
    precision: str = "fp16"
    workspace_mb: int = 1024
    batch: tuple[int, int, int] = (1, 1, 4)           # min / opt / max batch of the optimisation profile
    calib_source: str = ""
    calib_data_root: str = ""                         # int8: the training split of every source under this root
    calib_frames: int = 256
    calib_batch: int = 8
    calib_cache: str = ""
    timing_cache: str = ""
    check_frames: str = ""                            # folder/video for the parity check ('' = generated frames)
    check_count: int = 32
    tolerance: float = 0.0                            # 0 = TOLERANCE[precision]

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BuildError(f"--precision: expected one of {PRECISIONS}, got {self.precision!r}")
        if not (1 <= self.batch[0] <= self.batch[1] <= self.batch[2]):
            raise BuildError(f"--batch: expected 1 <= min <= opt <= max, got {self.batch}")
        if self.precision == "int8" and not (self.calib_source or self.calib_data_root or self.calib_cache):
            raise BuildError("--precision int8 needs --calib-data-root (the protocol's training frames), "
                             "--calib-frames-from (frames or a video) or an existing --calib-cache")


def check_output_writable(out: Path) -> None:
    parent = out.resolve().parent
    if not parent.is_dir():
        raise BuildError(f"--out: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise BuildError(f"--out: folder {parent} is not writable")


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise BuildError("TensorRT is not installed: install NVIDIA's tensorrt wheels on the GPU machine "
                         "(pip install tensorrt from NVIDIA's index); the CPU path needs no engine") from None
    return trt


def parse_onnx(trt, builder, logger, onnx_path: Path):
    network = builder.create_network(0)          # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BuildError(f"ONNX parser: {len(errors)} error(s) in {onnx_path}:\n  " + "\n  ".join(errors))
    return network, parser


def build(opts: BuildOptions, trt=None, gpu: GpuInfo | None = None) -> Sidecar:
    """Build ``opts.out`` and its sidecar; raises BuildError with a clear message at the first problem."""
    check_output_writable(opts.out)
    if not opts.onnx.is_file():
        raise BuildError(f"--onnx {opts.onnx}: file not found")
    meta = read_onnx_metadata(opts.onnx)
    trt = trt or import_tensorrt()
    try:
        gpu = gpu or gpu_info()
    except NoGpuError as e:
        raise BuildError(str(e)) from None
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = parse_onnx(trt, builder, logger, opts.onnx)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mb << 20)
    spec = meta.preprocess
    shape = lambda n: (n, 3, spec.input_height, spec.input_width)  # noqa: E731
    profile = builder.create_optimization_profile()
    profile.set_shape(meta.input_name, shape(opts.batch[0]), shape(opts.batch[1]), shape(opts.batch[2]))
    config.add_optimization_profile(profile)
    if opts.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    calib_sha = ""
    if opts.precision == "int8":
        from engines.build.calibration import calibration_batches, make_entropy_calibrator, training_frames
        config.set_flag(trt.BuilderFlag.INT8)
        cache = Path(opts.calib_cache or str(opts.out) + ".calib")
        source = (training_frames(opts.calib_data_root, opts.calib_frames) if opts.calib_data_root
                  else opts.calib_source)
        batches = (list(calibration_batches(source, spec, opts.calib_frames, opts.calib_batch))
                   if source else [np.zeros(shape(opts.calib_batch), np.float32)])
        config.int8_calibrator = make_entropy_calibrator(trt, batches, cache)
        config.set_calibration_profile(profile)
    timing = None
    if opts.timing_cache:
        tc = Path(opts.timing_cache)
        timing = config.create_timing_cache(tc.read_bytes() if tc.is_file() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
    log.info("building %s engine for %s (this takes a while)", opts.precision, gpu.name)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError("TensorRT returned no engine (build_serialized_network gave None); see the TensorRT "
                         "log above for the failing layer")
    opts.out.write_bytes(bytes(serialized))
    if timing is not None:
        Path(opts.timing_cache).write_bytes(bytes(timing.serialize()))
    if opts.precision == "int8":
        cache = Path(opts.calib_cache or str(opts.out) + ".calib")
        calib_sha = sha256_file(cache) if cache.is_file() else ""
    sidecar = Sidecar(onnx_sha256=sha256_file(opts.onnx), onnx_name=opts.onnx.name, tensorrt_version=trt.__version__,
                      gpu=gpu, precision=opts.precision, input_name=meta.input_name,
                      input_shapes={k: list(shape(n)) for k, n in zip(("min", "opt", "max"), opts.batch)},
                      workspace_mb=opts.workspace_mb, calibration_sha256=calib_sha, model_metadata=meta.to_json(),
                      build_time=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    sidecar.write(sidecar_path(opts.out))
    check = verify(opts, sidecar)
    sidecar = replace(sidecar, check=check)
    sidecar.write(sidecar_path(opts.out))
    return sidecar


def check_frames(opts: BuildOptions, spec) -> np.ndarray:
    """Preprocessed frames for the parity check: the given folder/video, else generated colonoscopy frames."""
    if opts.check_frames:
        from engines.build.calibration import calibration_batches
        return np.concatenate(list(calibration_batches(opts.check_frames, spec, opts.check_count, 8)))
    from engines.runtime.preprocess import preprocess
    from engines.data.synthetic import SceneRenderer, SynthParams
    r = SceneRenderer(SynthParams(seed=12345, seconds=60, width=960, height=540, fps=25))
    idx = np.linspace(0, r.params.frame_count - 1, opts.check_count).astype(int)
    return np.concatenate([preprocess(r.render(int(i)).image, spec).tensor for i in idx])


def compare(ref_scores: np.ndarray, test_scores: np.ndarray, threshold: float, tolerance: float) -> dict:
    diff = float(np.abs(ref_scores - test_scores).max())
    agree = float(((ref_scores >= threshold) == (test_scores >= threshold)).mean())
    return {"frames": int(len(ref_scores)), "max_abs_score_diff": round(diff, 6),
            "alert_decision_agreement": round(agree, 4), "tolerance": tolerance,
            "passed": bool(diff <= tolerance)}


def verify(opts: BuildOptions, sidecar: Sidecar) -> dict:
    """Run the new engine and ONNX Runtime on the same frames; fail the build over the tolerance."""
    from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
    from engines.backends.tensorrt_backend import TensorRTBackend
    meta = read_onnx_metadata(opts.onnx)
    x = check_frames(opts, meta.preprocess)
    with OnnxRuntimeBackend(opts.onnx) as ort_be, TensorRTBackend(opts.out, opts.onnx) as trt_be:
        ref = np.concatenate([ort_be.infer(x[i:i + 1])[meta.score_output] for i in range(len(x))])
        got = np.concatenate([trt_be.infer(x[i:i + 1])[meta.score_output] for i in range(len(x))])
    result = compare(ref, got, meta.threshold, opts.tolerance or TOLERANCE[opts.precision])
    log.info("engine check: max |score diff| %.2e, alert agreement %.3f", result["max_abs_score_diff"],
             result["alert_decision_agreement"])
    if not result["passed"]:
        raise BuildError(f"engine check failed: max |score difference| vs ONNX Runtime {result['max_abs_score_diff']:.3g} "
                         f"> tolerance {result['tolerance']} on {result['frames']} frames "
                         f"(alert decisions agree on {result['alert_decision_agreement']:.1%}); engine left at {opts.out}")
    return result
