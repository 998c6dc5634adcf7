"""tools/quantize: the INT8 twin of a model for ONNX Runtime on the CPU or for TensorRT (engines/compile/quantize.py),
calibrated on the lab's training frames or on a folder or video."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from engines.errors import ConfigError


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--model", default="", help="the fp32 ONNX model (default: the shipped model)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data-root", metavar="DIR",
                     help="calibrate on the training split of every source under DIR (laid out like ../shared/data)")
    src.add_argument("--frames-from", metavar="DIR_OR_VIDEO", help="calibrate on a folder of frames or a video")
    ap.add_argument("--sources", nargs="+", default=None, metavar="NAME",
                    help="with --data-root: only these sources (default: every source of the protocol)")
    ap.add_argument("--count", type=int, default=300, help="calibration frames (default 300)")
    ap.add_argument("--method", default="minmax", help="calibration: minmax (default), percentile or entropy")
    ap.add_argument("--exclude", action="append", default=[], metavar="NODE",
                    help="keep this node in fp32 as well, or every node under a prefix ending in * such as "
                         "'/net/blocks16.0/*' (repeatable; the head always is)")
    ap.add_argument("--threshold", type=float, default=0.0, help="the twin's own threshold (default: the fp32 model's)")
    ap.add_argument("--for", dest="target", choices=("onnxruntime", "tensorrt"), default="onnxruntime",
                    help="onnxruntime (default: uint8 activations, the CPU twin) or tensorrt (symmetric int8 "
                         "activations, zero point 0: what tools/build_engine --precision int8 builds from)")
    ap.add_argument("--out", default="", help="where to write it (default: MODEL.int8.onnx beside the model; "
                                              "MODEL.int8-trt.onnx with --for tensorrt)")
    return ap


def run(args) -> int:
    from engines.compile.calibration import CalibrationSet
    from engines.compile.quantize import QuantizeOptions, quantize_model
    from engines.lab.data.calibration import training_frames
    from engines.runtime.model_files import resolve_model_path
    cal = (training_frames(args.data_root, args.count, names=tuple(args.sources) if args.sources else None)
           if args.data_root
           else CalibrationSet(str(args.frames_from), path=str(args.frames_from)))
    try:
        opts = QuantizeOptions(onnx=resolve_model_path(args.model), calibration=cal,
                               out=Path(args.out) if args.out else None, count=args.count, method=args.method,
                               exclude=tuple(args.exclude), threshold=args.threshold, target=args.target)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    print(json.dumps(quantize_model(opts), indent=1))
    return 0
