"""Hard-negative mining: polyp-free views that a model (an earlier run, or the shipped one) calls polyps.

A larger pool of mined polyp-free views (other seeds than the protocol's own) is scored through the deployed
path; those at or over the model's threshold, highest first, join training (each also on a tower screen)."""
from __future__ import annotations

import logging
from pathlib import Path

from engines.data.datasets import Sample
from engines.data.sources import SourceSplit, mined_views, tower_views
from engines.evaluation.evaluate import score_samples
from engines.runtime.metadata import read_onnx_metadata

log = logging.getLogger(__name__)
POOL_SEED = 7           # the protocol's own mined views use seed 0


def candidate_pool(sources: dict[str, SourceSplit], holdout: str, per_frame: int) -> list[Sample]:
    """Mined polyp-free views of the training frames of every source but ``holdout``."""
    pool = []
    for name, src in sources.items():
        if name != holdout:
            pool += [s for s in mined_views(src.train, per_frame, zoomed_positives=0, seed=POOL_SEED) if s.label == 0]
    return pool


def hard_negatives(model: str | Path, pool: list[Sample], limit: int, threads: int = 2,
                   threshold: float | None = None) -> list[Sample]:
    """The pool's false positives under ``model`` (score >= its threshold, or ``threshold``), highest score first,
    at most ``limit``."""
    threshold = read_onnx_metadata(model).threshold if threshold is None else threshold
    scored = score_samples(model, pool, threads, shortcut=False)
    hits = sorted((f for f in scored if f.score >= threshold), key=lambda f: -f.score)[:limit]
    log.info("hard negatives: %d of %d mined views score >= %.3f under %s; %d kept",
             sum(f.score >= threshold for f in scored), len(pool), threshold, Path(model).name, len(hits))
    return [f.sample for f in hits]


def with_tower_views(samples: list[Sample]) -> list[Sample]:
    return samples + tower_views(samples, 1, seed=3)
