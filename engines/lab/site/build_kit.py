"""``polypwatch site-kit`` (the lab): the commissioning kit of a model, from the training split of the sources it
trained on (engines/lab/site/kit.py says what the kit holds). Whole frames only (no mined views, no tower screens),
spread evenly over the sources with a fixed seed; the check positives are disjoint from the training positives."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from engines.errors import ConfigError


def _spread(samples: dict[str, list], count: int, seed: int) -> list:
    """``count`` samples taken in turn from each source (each shuffled with ``seed``)."""
    rng = np.random.default_rng(seed)
    pools = {k: [v[i] for i in rng.permutation(len(v))] for k, v in samples.items() if v}
    out, i = [], 0
    while len(out) < count and any(i < len(v) for v in pools.values()):
        out += [v[i] for v in pools.values() if i < len(v)][: count - len(out)]
        i += 1
    return out


def _inputs(samples, spec) -> np.ndarray:
    from engines.lab.data.datasets import read_image
    from engines.runtime.preprocess import preprocess
    return np.stack([preprocess(read_image(s.image), spec).tensor[0] for s in samples])


def build_kit(model: Path, data_root: str, sources: list[str], positives: int, negatives: int, check: int,
              seed: int = 0):
    from engines.lab.data.sources import load_sources
    from engines.lab.site.commission import scores, trunk
    from engines.lab.site.kit import SiteKit, reference_from
    from engines.lab.site.model import load_model
    net, meta = load_model(model)
    srcs = load_sources(data_root, tuple(sources))
    whole = lambda ss, y: [s for s in ss if s.label == y and s.region is None and s.tower_seed < 0]  # noqa: E731
    pos = _spread({k: whole(v.train, 1) for k, v in srcs.items()}, positives + check, seed)
    neg = _spread({k: whole(v.train, 0) for k, v in srcs.items()}, negatives, seed + 1)
    if len(pos) < positives + check or len(neg) < 8:
        raise ConfigError(f"--sources {sources}: {len(pos)} whole polyp frames and {len(neg)} polyp-free frames in "
                          f"their training splits; need {positives + check} and at least 8")
    f_pos, f_neg = trunk(net, _inputs(pos, meta.preprocess)), trunk(net, _inputs(neg, meta.preprocess))
    ref = {}
    for name, split in srcs.items():
        by = {}
        for label, key in ((0, "negatives"), (1, "positives")):
            frames = whole(split.val, label)
            if frames:
                by[key] = scores(net, trunk(net, _inputs(frames, meta.preprocess)))
        ref[name] = by
    return SiteKit(meta.model_id, f_pos[:positives], f_neg, f_pos[positives:], reference_from(ref, meta.threshold))


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--model", default="", help="ONNX model with its .pt beside it (default: the shipped model)")
    ap.add_argument("--data-root", required=True, metavar="DIR", help="folder laid out like ../shared/data")
    ap.add_argument("--sources", nargs="+", required=True, metavar="NAME",
                    help="the sources the model trained on (their training splits give the evidence)")
    ap.add_argument("--positives", type=int, default=384)
    ap.add_argument("--negatives", type=int, default=192)
    ap.add_argument("--check", type=int, default=96, help="positives kept back for the report's sensitivity")
    ap.add_argument("--out", default="", help="default: <model>.sitekit.npz beside the model")


def run(args) -> int:
    from engines.lab.site.kit import kit_path, save_kit
    from engines.runtime.model_files import resolve_model_path
    model = resolve_model_path(args.model)
    kit = build_kit(model, args.data_root, args.sources, args.positives, args.negatives, args.check)
    out = Path(args.out) if args.out else kit_path(model)
    save_kit(kit, out)
    print(f"{out}: {kit.describe()} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0
