"""The validation sequences the operating point is chosen on, scored by a model through the deployed path.

- PolypGen centres A and B: each centre's validation polyp-free sequence (the protocol's, frames in recorded order).
- CVC-ColonDB: validation sequences 3, 8 and 13, each one polyp, visible where its mask is not empty.
- Generated video: clips of seeds 2000+ (the protocol's validation seeds), polyps visible where the renderer puts them,
  and the same scenes rendered without their polyps as polyp-free sequences.
Nothing here is a test frame: the rule that uses them chooses, it does not report external figures.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from stream.qa.operating_point import Sequence

VIDEO_SEEDS = (2000, 2001, 2002, 2003)


def _frame_number(path: Path) -> int:
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else 0


def _scores(model: Path, items, threads: int) -> np.ndarray:
    from engines.evaluation.evaluate import score_frames
    items = list(items)
    return np.array([f.score for f in score_frames(model, items, len(items), threads, shortcut=False)])


def recorded_sequences(model: Path, data_root: str | Path, threads: int = 2, fps: float = 25.0) -> list[Sequence]:
    """PolypGen's validation polyp-free sequences and CVC-ColonDB's validation sequences."""
    from engines.data.frames import read_sample
    from engines.data.sources import load_sources
    src = load_sources(data_root, ("cvc-colondb", "polypgen-A", "polypgen-B"))
    out = []
    for name in ("polypgen-A", "polypgen-B"):
        neg = [s for s in src[name].val if s.label == 0]
        for group in sorted({s.group for s in neg}):
            frames = sorted((s for s in neg if s.group == group), key=lambda s: _frame_number(s.image))
            out.append(Sequence(f"{name}/{group}", name, _scores(model, ((s, *read_sample(s)) for s in frames), threads),
                                fps))
    cvc = src["cvc-colondb"].val
    for group in sorted({s.group for s in cvc}, key=int):
        frames = sorted((s for s in cvc if s.group == group), key=lambda s: _frame_number(s.image))
        read = [(s, *read_sample(s)) for s in frames]
        visible = tuple(i for i, (_, _, m) in enumerate(read) if m is not None and m.any())
        out.append(Sequence(f"cvc-colondb/{group}", "cvc-colondb", _scores(model, read, threads), fps,
                            {int(group): visible} if visible else {}))
    return out


def generated_sequences(model: Path, seconds: float = 30.0, size: tuple[int, int] = (640, 480), threads: int = 2,
                        seeds: tuple[int, ...] = VIDEO_SEEDS) -> list[Sequence]:
    from engines.data.datasets import Sample
    from engines.data.synthetic import SceneRenderer, SynthParams
    out = []
    for seed in seeds:
        for with_polyps in (True, False):
            r = SceneRenderer(SynthParams(seed=seed, seconds=seconds, width=size[0], height=size[1], fps=25,
                                          polyps=with_polyps))
            frames, polyps = [], {}
            for i in range(r.params.frame_count):
                fr = r.render(i)
                frames.append((Sample(Path(f"synthetic:{seed}:{i}"), int(bool(fr.polyps))), fr.image, None))
                for q in fr.polyps:
                    polyps.setdefault(int(q.polyp_id), []).append(i)
            name = f"generated/seed{seed}" + ("" if with_polyps else "-polyp-free")
            out.append(Sequence(name, "generated", _scores(model, frames, threads), 25.0,
                                {k: tuple(v) for k, v in polyps.items()}))
    return out
