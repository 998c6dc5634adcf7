"""The straightforward single-threaded loop a first implementation would be: read a frame, preprocess,
run the same model with torch, draw, repeat. Measured on the same file and model as polypwatch.

Run as ``python -m stream.lab.bench.baseline VIDEO MODEL.onnx OUT.json [--realtime]``. In real-time mode the
file stands for a live source: frame i exists from t0 + i/fps on, and its latency runs from then (a loop
that falls behind reads old frames from the driver's buffer, exactly as with a capture card).
"""
from __future__ import annotations

import json
import sys
import time

import cv2


def run(video: str, model: str, realtime: bool, threads: int = 2) -> dict:
    from pathlib import Path

    import torch

    from engines.backends.torch_backend import checkpoint_for
    from engines.model import ExportWrapper, PolypNet
    from engines.runtime.metadata import read_onnx_metadata
    from engines.runtime.preprocess import preprocess
    from stream.latency import percentiles_ms
    torch.set_num_threads(threads)
    meta = read_onnx_metadata(model)
    state = torch.load(str(checkpoint_for(Path(model))), map_location="cpu", weights_only=True)
    net = PolypNet(pretrained=False)
    net.load_state_dict({k: v.float() for k, v in state["state_dict"].items()})
    net = ExportWrapper(net).eval()
    cap = cv2.VideoCapture(video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    lat, n = [], 0
    t0 = time.monotonic_ns()
    while True:
        ok, img = cap.read()
        if not ok:
            break
        due = t0 + int(n * 1e9 / fps)
        if realtime:
            now = time.monotonic_ns()
            if now < due:
                time.sleep((due - now) / 1e9)
        t_start = due if realtime else time.monotonic_ns()
        pre = preprocess(img, meta.preprocess)
        with torch.no_grad():
            s, h = net(torch.from_numpy(pre.tensor))
        if float(s[0]) >= meta.threshold:
            cv2.rectangle(img, (10, 10), (img.shape[1] - 10, img.shape[0] - 10), (0, 255, 255), 8)
        lat.append(time.monotonic_ns() - t_start)
        n += 1
    wall = (time.monotonic_ns() - t0) / 1e9
    return {"frames": n, "seconds": round(wall, 3), "fps": round(n / wall, 2), "latency_ms": percentiles_ms(lat),
            "over_budget_33ms": int(sum(v > 33e6 for v in lat)), "realtime": realtime}


def main() -> int:
    video, model, out = sys.argv[1:4]
    res = run(video, model, "--realtime" in sys.argv)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
