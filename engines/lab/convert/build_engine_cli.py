"""tools/build_engine: compile an ONNX model into a TensorRT engine ahead of time (never on a procedure's first frame)."""
from __future__ import annotations

import argparse
from pathlib import Path

from engines.backends.tensorrt_version import SUPPORTED
from engines.errors import ConfigError


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.description = (f"Compile a polypwatch ONNX model into a TensorRT engine for THIS GPU and TensorRT version "
                      f"(TensorRT {SUPPORTED}: 10.x and 11.x; a strongly typed network, its precision the ONNX "
                      f"file's own), write a sidecar JSON (ENGINE.json) with the complete cache key and the engine's "
                      f"check against ONNX Runtime; an engine over the tolerance is marked failed and never loaded "
                      f"(exit 5). Needs an NVIDIA GPU and TensorRT; exits 1 at once with a clear message otherwise.")
    ap.add_argument("--onnx", default="", help="ONNX model with polypwatch metadata (default: the shipped model)")
    ap.add_argument("--out", default="", help="engine file to write (default: MODEL.PRECISION.engine beside the "
                                              "model); the sidecar goes to OUT.json")
    ap.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16",
                    help="fp16 (default: the model converted to mixed precision on the CPU, checked against fp32), "
                         "fp32, or int8 (explicit quantisation: the Q/DQ twin of tools/quantize --for tensorrt)")
    ap.add_argument("--qdq", default="", metavar="FILE",
                    help="int8: the symmetric int8 Q/DQ twin (default: MODEL.int8-trt.onnx beside the model)")
    ap.add_argument("--workspace-mb", type=int, default=1024, help="builder workspace limit in MiB (default 1024)")
    ap.add_argument("--batch", default="1,1,4", metavar="MIN,OPT,MAX",
                    help="batch sizes of the optimisation profile (default 1,1,4)")
    ap.add_argument("--timing-cache", default="", help="timing cache file to reuse and update (speeds up rebuilds)")
    frames = ap.add_mutually_exclusive_group()
    frames.add_argument("--check-data-root", default="", metavar="DIR",
                        help="parity checks on the validation split of every source under DIR (laid out like "
                             "../shared/data)")
    frames.add_argument("--check-frames", default="", metavar="DIR_OR_VIDEO",
                        help="parity checks on a folder of frames or a video (default: generated colonoscopy frames)")
    ap.add_argument("--check-count", type=int, default=32, help="frames in the checks (default 32)")
    ap.add_argument("--tolerance", type=float, default=0.0,
                    help="max |score difference| allowed (default fp32 1e-3, fp16 2e-2, int8 8e-2)")


def run(args) -> int:
    from engines.compile.calibration import CalibrationSet
    from engines.compile.engine import BuildOptions, build
    from engines.lab.data.calibration import validation_frames
    from engines.runtime.model_files import resolve_model_path
    try:
        batch = tuple(int(v) for v in args.batch.split(","))
        if len(batch) != 3:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--batch: expected MIN,OPT,MAX such as 1,1,4, got {args.batch!r}") from None
    onnx = resolve_model_path(args.onnx)
    checks = (validation_frames(args.check_data_root, args.check_count) if args.check_data_root
              else CalibrationSet(args.check_frames, path=args.check_frames) if args.check_frames else None)
    out = Path(args.out) if args.out else onnx.with_name(f"{onnx.stem}.{args.precision}.engine")
    opts = BuildOptions(onnx=onnx, out=out, precision=args.precision, workspace_mb=args.workspace_mb,
                        batch=batch, qdq=args.qdq, timing_cache=args.timing_cache,
                        checks=checks, check_count=args.check_count, tolerance=args.tolerance)
    sidecar = build(opts)
    c = sidecar.check
    print(f"wrote {out} ({sidecar.precision}, {sidecar.gpu.name}, TensorRT {sidecar.tensorrt_version}); cache key "
          f"{sidecar.cache_key()[:16]}; check: max |score diff| {c['max_abs_score_diff']}, alert agreement "
          f"{c['alert_decision_agreement']}")
    return 0
