"""The floor under the pipeline: the model alone and the whole per-frame path, timed in one process with nothing
else running. ``python -m stream.lab.bench.model_alone OUT.json [--device cpu|cuda] [--size 1920x1080] [--iters N]``

cpu: ONNX Runtime (the embedded default): ``backend.infer`` on a fixed input, and ``Detector.detect`` on a generated
tower frame (preprocessing + model + postprocessing). cuda: the torch backend with device preprocessing: the same two,
plus the model's CUDA graph replayed alone (launch + synchronise), the figure the GPU issue calls the floor.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from stream.latency import percentiles_ms


def _time(fn, iters: int, warm: int = 20) -> dict:
    for _ in range(warm):
        fn()
    out = []
    for _ in range(iters):
        t = time.monotonic_ns()
        fn()
        out.append(time.monotonic_ns() - t)
    return percentiles_ms(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="model_alone")
    ap.add_argument("out")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="cpu: engine.precision")
    ap.add_argument("--model", default="", help="fp32 ONNX model (default: the shipped model)")
    args = ap.parse_args(argv)
    from engines.synthetic import SceneRenderer, SynthParams
    from engines.synthetic.params import parse_size
    from engines.detector import Detector
    from stream.config import load_config
    w, h = parse_size(args.size)
    sets = (["engine.backend=onnxruntime", f"engine.precision={args.precision}"] if args.device == "cpu" else
            ["engine.backend=torch", "engine.device=cuda", "engine.device_preprocess=true"])
    cfg = load_config(None, sets + ([f"engine.model={args.model}"] if args.model else []))
    frame = SceneRenderer(SynthParams(seed=21, seconds=10, width=w, height=h, fps=30)).render(90).image
    figs: dict = {"device": args.device, "size": args.size, "iters": args.iters}
    with Detector(cfg.engine, cfg.preprocess) as det:
        spec = det.spec
        x = np.random.default_rng(0).standard_normal((1, 3, spec.input_height, spec.input_width)).astype(np.float32)
        figs["model_id"], figs["backend"] = det.model_id, det.backend_name
        figs.update(det.precision.record())
        figs["warmup"] = det.warm_up(frame.shape)
        figs["model_infer_ms"] = _time(lambda: det.backend.infer(x), args.iters)
        figs["latency_ms"] = _time(lambda: det.detect(frame), args.iters)          # the whole per-frame path
        if args.device == "cuda":
            import torch
            be = det.backend
            be.infer(x)                                   # captures the model's own graph (batch 1)

            def replay() -> None:
                be._graph.replay()
                torch.cuda.current_stream().synchronize()
            figs["graph_replay_ms"] = _time(replay, args.iters)
            figs["gpu"] = torch.cuda.get_device_name(0)
    figs["fps"] = round(1000 / figs["latency_ms"]["p50"], 1)
    with open(args.out, "w") as f:
        json.dump(figs, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
