"""tools/model_latency: CPU inference latency of candidate architectures and input sizes through the deployed
path (ONNX Runtime, the configured threads; preprocessing of a 1080p frame at that input size): the latency side
of the accuracy-versus-latency table in docs/MODEL_CARD.md. Weights are random: latency does not depend on them.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def measure(backbone: str, size: int, threads: int, runs: int, frame: np.ndarray) -> dict:
    import torch

    from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
    from engines.model import PolypNet
    from engines.runtime.metadata import ModelMetadata
    from engines.runtime.preprocess import PreprocessSpec, preprocess
    from engines.compile.export import export_onnx
    torch.manual_seed(0)
    spec = PreprocessSpec(input_height=size, input_width=size)
    net = PolypNet(pretrained=False, backbone=backbone).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(net, ModelMetadata(model_id=f"{backbone}-{size}", preprocess=spec), path)
        pre_ns, inf_ns = [], []
        with OnnxRuntimeBackend(path, threads=threads) as be:
            for k in range(runs + 10):
                t0 = time.monotonic_ns()
                x = preprocess(frame, spec).tensor
                t1 = time.monotonic_ns()
                be.infer(x)
                t2 = time.monotonic_ns()
                if k >= 10:
                    pre_ns.append(t1 - t0)
                    inf_ns.append(t2 - t1)
    pct = lambda v, q: round(float(np.percentile(np.array(v) / 1e6, q)), 2)  # noqa: E731
    return {"backbone": backbone, "input": size, "params_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
            "infer_ms_p50": pct(inf_ns, 50), "infer_ms_p99": pct(inf_ns, 99),
            "preprocess_1080p_ms_p50": pct(pre_ns, 50)}


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--backbones", nargs="+", default=["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[160, 192, 224, 256])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--out", default="", help="write the rows as JSON here")


def run(args) -> int:
    from engines.synthetic import SceneRenderer, SynthParams
    frame = SceneRenderer(SynthParams(seed=5, seconds=10, width=1920, height=1080, fps=30)).render(40).image
    rows = []
    print("| backbone | input | params (M) | ONNX Runtime p50 / p99 ms | preprocessing 1080p p50 ms |")
    print("|---|---|---|---|---|")
    for b in args.backbones:
        for s in args.sizes:
            r = measure(b, s, args.threads, args.runs, frame)
            rows.append(r)
            print(f"| {b} | {s} | {r['params_m']} | {r['infer_ms_p50']} / {r['infer_ms_p99']} | "
                  f"{r['preprocess_1080p_ms_p50']} |", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0

