"""Command line of tools/synth_video (thin: parses arguments, calls write_clip)."""
from __future__ import annotations

import argparse
import sys
import time

from engines.synthetic.clip import CODECS, truth_path_for, write_clip
from engines.synthetic.params import FPS_CHOICES, SynthParams, parse_size
from engines.errors import ConfigError


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", required=True, help="output video path, e.g. clip.mp4 (truth goes to clip.json)")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration in seconds (default 10)")
    ap.add_argument("--fps", type=int, default=30, choices=FPS_CHOICES, help="frame rate (default 30)")
    ap.add_argument("--size", default="640x480", help="WIDTHxHEIGHT up to 1920x1080 (default 640x480)")
    ap.add_argument("--seed", type=int, default=1, help="random seed: same seed, same frames (default 1)")
    ap.add_argument("--codec", choices=CODECS, default="mp4v",
                    help="mp4v (OpenCV, always available), h264 (needs ffmpeg on PATH), mjpg")
    ap.add_argument("--no-polyps", action="store_true", help="render the same scene without any polyp")


def run(args) -> int:
    try:
        w, h = parse_size(args.size)
        params = SynthParams(seed=args.seed, seconds=args.seconds, width=w, height=h, fps=args.fps,
                             polyps=not args.no_polyps)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    t0 = time.monotonic()

    def progress(i: int, n: int) -> None:
        if sys.stderr.isatty() and (i % 30 == 0 or i == n):
            print(f"\rframe {i}/{n}", end="" if i < n else "\n", file=sys.stderr)

    truth = write_clip(params, args.out, codec=args.codec, progress=progress)
    positives = sum(1 for f in truth.frames if f)
    print(f"wrote {args.out} and {truth_path_for(args.out)}: {truth.frame_count} frames at {params.fps} fps, "
          f"{len(truth.polyps)} polyps, {positives} frames with a polyp, {time.monotonic() - t0:.1f} s")
    return 0
