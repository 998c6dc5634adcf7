"""Command line of tools/synth_video (thin: parses arguments, calls write_clip)."""
from __future__ import annotations

import argparse
import logging
import sys
import time

from engines.data.synthetic.clip import CODECS, truth_path_for, write_clip
from engines.data.synthetic.params import FPS_CHOICES, SynthParams, parse_size
from engines.errors import PolypwatchError


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="synth_video", description=__doc__ or "Write a synthetic colonoscopy clip "
                                 "and its ground truth (CLIP.json beside CLIP.mp4).")
    ap.add_argument("--out", required=True, help="output video path, e.g. clip.mp4 (truth goes to clip.json)")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration in seconds (default 10)")
    ap.add_argument("--fps", type=int, default=30, choices=FPS_CHOICES, help="frame rate (default 30)")
    ap.add_argument("--size", default="640x480", help="WIDTHxHEIGHT up to 1920x1080 (default 640x480)")
    ap.add_argument("--seed", type=int, default=1, help="random seed: same seed, same frames (default 1)")
    ap.add_argument("--codec", choices=CODECS, default="mp4v",
                    help="mp4v (OpenCV, always available), h264 (needs ffmpeg on PATH), mjpg")
    ap.add_argument("--no-polyps", action="store_true", help="render the same scene without any polyp")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        w, h = parse_size(args.size)
        params = SynthParams(seed=args.seed, seconds=args.seconds, width=w, height=h, fps=args.fps,
                             polyps=not args.no_polyps)
    except ValueError as e:
        print(f"synth_video: {e}", file=sys.stderr)
        return 2
    t0 = time.monotonic()

    def progress(i: int, n: int) -> None:
        if sys.stderr.isatty() and (i % 30 == 0 or i == n):
            print(f"\rframe {i}/{n}", end="" if i < n else "\n", file=sys.stderr)

    try:
        truth = write_clip(params, args.out, codec=args.codec, progress=progress)
    except PolypwatchError as e:
        print(f"synth_video: {e}", file=sys.stderr)
        return 1
    positives = sum(1 for f in truth.frames if f)
    print(f"wrote {args.out} and {truth_path_for(args.out)}: {truth.frame_count} frames at {params.fps} fps, "
          f"{len(truth.polyps)} polyps, {positives} frames with a polyp, {time.monotonic() - t0:.1f} s")
    return 0
