"""Sub-commands beyond ``run``: each registers its parser and its handler."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from stream.cli import _common, _install_signals, register_command


def _overlay_parser(sub) -> None:
    p = sub.add_parser("overlay", help="draw the pipeline's detections on the live feed (separate process)")
    _common(p)
    p.add_argument("--summary-json", help="also write the end-of-run summary to this JSON file")


def cmd_overlay(args) -> int:
    import stream.overlay.config  # noqa: F401  (registers the section)
    from stream.config import load_config
    from stream.overlay.app import Overlay, format_summary
    cfg = load_config(args.config, args.set)
    ov = Overlay(cfg.extra["overlay"])
    _install_signals(ov.stop_event.set)
    summary = ov.run()
    print(format_summary(summary))
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=1))
    return 0


def _replay_parser(sub) -> None:
    p = sub.add_parser("replay", help="run recorded procedures through the detector and measure it (QA)")
    _common(p)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video file, folder of numbered frames (optional masks/ beside images/), or folder of videos")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--truth", help="ground-truth JSON (default: INPUT with .json, or masks beside the frames)")
    p.add_argument("--realtime", action="store_true",
                   help="pace at the source fps and drop what cannot be kept up with (what the doctor saw)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated video")


def cmd_replay(args) -> int:
    from stream.config import load_config
    from stream.qa.inputs import expand_inputs
    from stream.qa.replay import format_metrics, replay
    cfg = load_config(args.config, args.set)
    results = replay(expand_inputs(args.inputs), Path(args.out), cfg, args.truth, args.realtime, not args.no_video)
    for m in results:
        print(format_metrics(m))
    print(f"outputs in {args.out}")
    return 0


def _keys_parser(sub) -> None:
    p = sub.add_parser("keys", help="make a CURVE key pair (NAME.key public, NAME.key_secret secret)")
    p.add_argument("--out", required=True, help="folder to write the two files into")
    p.add_argument("--name", required=True, help="key name, e.g. pipeline or overlay-room3")
    p.add_argument("-v", "--verbose", action="store_true")


def cmd_keys(args) -> int:
    from stream.security import generate_keypair
    public, secret = generate_keypair(args.out, args.name)
    print(f"public key {public} (give to the other side), secret key {secret} (keep here, mode 600)")
    return 0


import stream.overlay.config  # noqa: E402,F401  (the overlay section is known to every command's config)

EXTRA_PARSERS = [_overlay_parser, _replay_parser, _keys_parser]
register_command("keys", cmd_keys)
register_command("overlay", cmd_overlay)
register_command("replay", cmd_replay)
