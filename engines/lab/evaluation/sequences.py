"""The validation sequences the operating point is chosen on, scored by a model through the deployed path.

- PolypGen centres A and B: each centre's validation polyp-free sequence (the protocol's, frames in recorded order).
- CVC-ColonDB: validation sequences 3, 8 and 13, each one polyp, visible where its mask is not empty.
- The composed tower stream: each of those recorded sequences once more on a tower screen (engines/lab/data/tower.py),
  one screen per sequence as a real tower shows it, source ``tower`` with its own floor.
- Generated video: clips of seeds 2000+ (the protocol's validation seeds), polyps visible where the renderer puts them,
  and the same scenes rendered without their polyps as polyp-free sequences.
Nothing here is a test frame: the rule that uses them chooses, it does not report external figures.
"""
from __future__ import annotations

import logging
import re
import zlib
from pathlib import Path

import numpy as np

from engines.lab.evaluation.operating_point import Sequence

log = logging.getLogger(__name__)

VIDEO_SEEDS = (2000, 2001, 2002, 2003)


def _frame_number(path: Path) -> int:
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else 0


def _scores(model: Path, items, threads: int) -> np.ndarray:
    from engines.lab.evaluation.evaluate import score_frames
    items = list(items)
    return np.array([f.score for f in score_frames(model, items, len(items), threads, shortcut=False)])


def _recorded(data_root: str | Path) -> list[tuple[str, str, list, dict[int, tuple[int, ...]]]]:
    """(name, source, [(sample, image, mask)] in frame order, polyps) of every recorded validation sequence."""
    from engines.lab.data.frames import read_sample
    from engines.lab.data.sources import load_sources
    src = load_sources(data_root, ("cvc-colondb", "polypgen-A", "polypgen-B"))
    out = []
    for name in ("polypgen-A", "polypgen-B"):
        neg = [s for s in src[name].val if s.label == 0]
        for group in sorted({s.group for s in neg}):
            frames = sorted((s for s in neg if s.group == group), key=lambda s: _frame_number(s.image))
            out.append((f"{name}/{group}", name, [(s, *read_sample(s)) for s in frames], {}))
    cvc = src["cvc-colondb"].val
    for group in sorted({s.group for s in cvc}, key=int):
        frames = sorted((s for s in cvc if s.group == group), key=lambda s: _frame_number(s.image))
        read = [(s, *read_sample(s)) for s in frames]
        out.append((f"cvc-colondb/{group}", "cvc-colondb", read, _visible(int(group), read)))
    return out


def _visible(polyp_id: int, read: list) -> dict[int, tuple[int, ...]]:
    visible = tuple(i for i, (_, _, m) in enumerate(read) if m is not None and m.any())
    return {polyp_id: visible} if visible else {}


def on_tower(name: str, read: list) -> list:
    """The sequence as one tower would send it: every frame on the same screen (canvas, scope-view placement,
    processor colour, text, panel and compression drawn once from the sequence's name), masks moved with it."""
    from engines.lab.data.tower import tower_frame
    seed = zlib.crc32(name.encode())
    return [(s, *tower_frame(img, mask, np.random.default_rng(seed))) for s, img, mask in read]


def recorded_sequences(model: Path, data_root: str | Path, threads: int = 2, fps: float = 25.0,
                       tower: bool = True) -> list[Sequence]:
    """PolypGen's validation polyp-free sequences and CVC-ColonDB's validation sequences, as recorded and (``tower``)
    each once more on a tower screen (source ``tower``: the composed tower stream)."""
    out = []
    for name, source, read, polyps in _recorded(data_root):
        out.append(Sequence(name, source, _scores(model, read, threads), fps, polyps))
        if not tower:
            continue
        screen = on_tower(name, read)
        shown = _visible(next(iter(polyps)), screen) if polyps else {}
        if polyps and not shown:      # the screen's panel hides the polyp: neither a polyp nor a polyp-free sequence
            log.warning("operating point: %s on its tower screen shows no polyp; left out", name)
            continue
        out.append(Sequence(f"tower/{name}", "tower", _scores(model, screen, threads), fps, shown))
    return out


def generated_sequences(model: Path, seconds: float = 30.0, size: tuple[int, int] = (640, 480), threads: int = 2,
                        seeds: tuple[int, ...] = VIDEO_SEEDS) -> list[Sequence]:
    from engines.lab.data.datasets import Sample
    from engines.synthetic import SceneRenderer, SynthParams
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
