"""Decode-only throughput of a file: the ceiling any replay can reach. ``python -m stream.lab.bench.decode VIDEO OUT.json``"""
from __future__ import annotations

import json
import sys
import time

import cv2


def main() -> int:
    video, out = sys.argv[1:3]
    cap = cv2.VideoCapture(video)
    n, t0 = 0, time.monotonic()
    while cap.read()[0]:
        n += 1
    wall = time.monotonic() - t0
    with open(out, "w") as f:
        json.dump({"frames": n, "seconds": round(wall, 3), "fps": round(n / wall, 2)}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
