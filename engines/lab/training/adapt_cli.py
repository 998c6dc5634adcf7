"""tools/adapt: fit a model to one hospital's tower (engines/lab/training/adapt.py) and write it as a new model file."""
from __future__ import annotations

import argparse
import json

from engines.errors import ConfigError


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--model", default="", help="ONNX model with its .pt beside it (default: the shipped model)")
    ap.add_argument("--recordings", nargs="+", required=True, metavar="VIDEO_OR_DIR",
                    help="the site's procedure recordings, unlabelled (videos or folders of frames)")
    ap.add_argument("--polyp-free", nargs="+", required=True, metavar="VIDEO_OR_DIR",
                    help="the site's recordings with no polyp in view: they choose the threshold")
    ap.add_argument("--site", required=True, help="short name of the site, appended to the model id")
    ap.add_argument("--out", required=True, help="the site's model (.onnx; its .pt and .adapt.json beside it)")
    ap.add_argument("--frames-per-recording", type=int, default=300, metavar="N")
    ap.add_argument("--specificity", type=float, default=0.95,
                    help="share of the polyp-free frames kept under the new threshold")
    ap.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    from engines.runtime.model_files import resolve_model_path
    from engines.lab.training.adapt import AdaptConfig, adapt_model
    try:
        cfg = AdaptConfig(site=args.site, frames_per_recording=args.frames_per_recording,
                          specificity=args.specificity, seed=args.seed)
        result = adapt_model(resolve_model_path(args.model), args.recordings, args.polyp_free, cfg, args.out)
    except ValueError as e:               # too little footage, a bad option value: what the user asked for
        raise ConfigError(str(e)) from None
    text = json.dumps(result.to_dict(), indent=1)
    result.path.with_suffix(".adapt.json").write_text(text + "\n")
    print(text)
    return 0
