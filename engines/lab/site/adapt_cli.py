"""polypwatch adapt: commission the model at one hospital's tower from its polyp-free footage
(engines/lab/site/adapt.py): a new site model file, its INT8 twin and a report."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(ap: argparse.ArgumentParser):
    """The options; returns the group of footage sources (``polypwatch adapt`` adds ``--records`` to it)."""
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--polyp-free", nargs="+", metavar="VIDEO_OR_DIR",
                     help="the site's recordings with no polyp in view, at least two (procedures whose report found "
                          "none are polyp-free from end to end); a folder of frames is one recording in name order")
    ap.add_argument("--site", required=True, help="short name of the site (a-z, 0-9, '-'), appended to the model id")
    ap.add_argument("--out", required=True, help="the site model (.onnx, a new file); .pt, .int8.onnx and the report "
                                                 "(.commission.json, .commission.html) beside it")
    ap.add_argument("--model", default="", help="ONNX model with its .pt and .sitekit.npz beside it (default: shipped)")
    ap.add_argument("--frames-per-recording", type=int, default=200, metavar="N")
    ap.add_argument("--folder-fps", type=float, default=25.0, help="frame rate of a folder of frames (default 25)")
    ap.add_argument("--include-set-aside", action="store_true",
                    help="train on the frames set aside for review too (you looked: none shows a polyp)")
    ap.add_argument("--replace", action="store_true", help="overwrite an earlier site model at --out")
    ap.add_argument("--steps", type=int, default=200, help="fine-tuning steps (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    return src


def options(args, folder_fps: float | None = None):
    from engines.errors import ConfigError
    from engines.lab.site.adapt import AdaptOptions
    from engines.lab.site.commission import FinetuneConfig
    try:
        ft = FinetuneConfig(steps=args.steps, seed=args.seed)
    except ValueError as e:
        raise ConfigError(f"--steps: {e}") from None
    return AdaptOptions(site=args.site, per_recording=args.frames_per_recording,
                        folder_fps=folder_fps or args.folder_fps, include_set_aside=args.include_set_aside,
                        replace=args.replace, finetune=ft)


def run(args, paths: list[str] | None = None, positives: list | None = None, folder_fps: float | None = None) -> int:
    from engines.lab.site.adapt import adapt
    from engines.runtime.model_files import resolve_model_path
    r = adapt(resolve_model_path(args.model), paths or args.polyp_free, options(args, folder_fps), Path(args.out),
              positives)
    keep = ("site", "commissioned_from", "site_threshold", "stock", "threshold_only", "commissioned_held_out",
            "commissioned_check_positives_sensitivity", "site_polyps", "set_aside", "files")
    print(json.dumps({k: r[k] for k in keep if k in r}, indent=1))
    if r["set_aside"]["frames"] and not r["set_aside"]["trained_on"]:
        print(f"{r['set_aside']['frames']} frames set aside for review, not trained on: see "
              f"{Path(args.out).with_suffix('.commission.html')}; if none shows a polyp, run again with "
              f"--include-set-aside --replace")
    return 0
