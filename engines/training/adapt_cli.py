"""tools/adapt: fit a model to one hospital's tower (engines/training/adapt.py) and write it as a new model file."""
from __future__ import annotations

import argparse
import json
import logging
import sys

from engines.errors import PolypwatchError


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="adapt", description=__doc__.split(":", 1)[1].strip(),
                                 epilog="The site's model is a new file: check it with `polypwatch replay` on "
                                        "annotated local recordings before use (docs/MODEL_CARD.md, Site adaptation).")
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
    return ap


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from engines.runtime.model_files import resolve_model_path
    from engines.training.adapt import AdaptConfig, adapt_model
    try:
        cfg = AdaptConfig(site=args.site, frames_per_recording=args.frames_per_recording,
                          specificity=args.specificity, seed=args.seed)
        result = adapt_model(resolve_model_path(args.model), args.recordings, args.polyp_free, cfg, args.out)
    except PolypwatchError as e:
        print(f"adapt: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"adapt: {e}", file=sys.stderr)
        return 2
    text = json.dumps(result.to_dict(), indent=1)
    result.path.with_suffix(".adapt.json").write_text(text + "\n")
    print(text)
    return 0
