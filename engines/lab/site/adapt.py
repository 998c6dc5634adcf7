"""``polypwatch adapt``: a site model from a hospital's polyp-free footage (the successor of batch-norm statistics
and a threshold, which moved the trade between sensitivity and specificity but not the ranking).

1. The footage is read and checked (engines/lab/site/footage.py): several recordings, enough frames, one tower.
2. Frames the stock model scores at or over its threshold are set aside for review (a polyp the report missed must
   not be learned as normal): shown in the report, trained on only when the engineer says they looked
   (``include_set_aside``).
3. Cross-validation by recording: for each group of recordings, the model fine-tuned on the others scores it. The
   site threshold comes from those held-out scores by the rule of engines/lab/site/operating.py, and the report's
   figures are these held-out ones (a model scores its own training frames near 0: figures on them mean nothing).
4. The site model: fine-tuned on every recording, with the site threshold, written as a new file with its INT8 twin,
   its metadata (site, footage hashes, date, before and after) and a report; a file is never overwritten unless it is
   an earlier site model and ``replace`` is asked.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engines.errors import ConfigError, ModelError
from engines.lab.site.commission import FinetuneConfig, check_network, finetune, scores, trunk
from engines.lab.site.footage import FootageError, Recording, read_footage
from engines.lab.site.kit import SiteKit, kit_path, load_kit
from engines.lab.site.operating import footage_figures, per_recording, refusal, site_threshold
from engines.lab.site.out_files import check_out, footage_hash
from engines.runtime.alerts import AlertsConfig
from engines.runtime.preprocess import preprocess

log = logging.getLogger(__name__)
SITE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


@dataclass(frozen=True)
class AdaptOptions:
    site: str
    per_recording: int = 200          # frames spread over each recording
    min_recordings: int = 2
    min_frames: int = 150
    folder_fps: float = 25.0          # a folder of frames is a recording at this rate (a video has its own)
    include_set_aside: bool = False   # the engineer looked at the set-aside frames: none shows a polyp
    max_set_aside_share: float = 0.5  # more, unconfirmed: not polyp-free footage, or a tower this model cannot serve
    groups: int = 5                   # cross-validation groups of recordings (at most)
    replace: bool = False             # overwrite an earlier SITE model at --out
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

    def __post_init__(self) -> None:
        if not SITE_NAME.fullmatch(self.site):
            raise ConfigError(f"--site: expected 1-40 of a-z, 0-9 and '-' (starting with a letter or digit), "
                              f"got {self.site!r}")
        if self.per_recording < 10:
            raise ConfigError(f"--frames-per-recording: expected at least 10, got {self.per_recording}")
        if self.min_recordings < 2:
            raise ConfigError(f"min_recordings: expected at least 2 (one recording is held out at a time), "
                              f"got {self.min_recordings}")


def set_aside(stock: np.ndarray, threshold: float) -> np.ndarray:
    """Frames the stock model scores at or over its threshold, and their neighbours in the recording."""
    hit = stock >= threshold
    return hit | np.r_[hit[1:], False] | np.r_[False, hit[:-1]]


@dataclass
class SiteData:
    recs: list[Recording]
    f16: list[np.ndarray]             # per recording
    stock: list[np.ndarray]           # stock model's scores per recording
    aside: list[np.ndarray]           # set aside for review, per recording
    minutes: list[float]
    inputs_sample: np.ndarray         # a few model inputs (export parity)
    pos: object = None                # the site's own reviewed polyps (positives.SitePositives), --records only
    pos_held: dict = field(default_factory=dict)    # recording -> (held-out scores of its polyps, their cases)


def load_site(net, meta, paths, opts: AdaptOptions) -> SiteData:
    recs = read_footage(paths, opts.per_recording, meta.preprocess, opts.min_recordings, opts.min_frames)
    f16, stock, aside, minutes = [], [], [], []
    sample = None
    for r in recs:
        x = np.stack([preprocess(img, meta.preprocess).tensor[0] for img in r.frames])
        sample = x[:4] if sample is None else sample
        f = trunk(net, x)
        f16.append(f)
        s = scores(net, f)
        stock.append(s)
        aside.append(set_aside(s, meta.threshold))
        span = (r.indices[-1] - r.indices[0] + 1) if len(r.indices) > 1 else 1
        minutes.append(span / (r.fps or opts.folder_fps) / 60)
    share = float(np.concatenate(aside).mean())
    if share > opts.max_set_aside_share and not opts.include_set_aside:
        raise FootageError(f"--polyp-free: the stock model scores {share:.0%} of these frames (with neighbours) at or "
                           f"over its threshold: this is not polyp-free footage, or a tower this model cannot serve. "
                           f"Look at them with polypwatch site-check; if none shows a polyp, --include-set-aside")
    return SiteData(recs, f16, stock, aside, minutes, sample)


def groups_of(n: int, k: int) -> list[list[int]]:
    k = min(n, k)
    return [list(range(g, n, k)) for g in range(k)]


def cross_validate(net, kit: SiteKit, site: SiteData, opts: AdaptOptions) -> list[np.ndarray]:
    """Per recording: its frames scored by the model fine-tuned on the other groups' recordings (and on the site's
    polyps of those recordings only; the held-out ones' polyp scores go to ``site.pos_held``)."""
    held: list[np.ndarray | None] = [None] * len(site.recs)
    for gi, group in enumerate(groups_of(len(site.recs), opts.groups)):
        train = [_train_frames(site, i, opts) for i in range(len(site.recs)) if i not in group]
        pos = site.pos
        for i in group:
            pos = pos.without(site.recs[i].name) if pos is not None else None
        tuned = finetune(net, np.concatenate(train), kit, dataclasses.replace(opts.finetune, seed=opts.finetune.seed + gi),
                         pos)
        for i in group:
            held[i] = scores(tuned, site.f16[i])
            if site.pos is not None:
                mine = site.pos.of(site.recs[i].name)
                site.pos_held[site.recs[i].name] = (scores(tuned, mine.f16) if len(mine) else np.zeros(0), mine.cases)
        log.info("cross-validation: group %d of %d done", gi + 1, min(len(site.recs), opts.groups))
    return held


def _train_frames(site: SiteData, i: int, opts: AdaptOptions) -> np.ndarray:
    return site.f16[i] if opts.include_set_aside else site.f16[i][~site.aside[i]]


def _kept(site: SiteData, per: list[np.ndarray], opts: AdaptOptions) -> list[np.ndarray]:
    """The scores of the frames that count as polyp-free (set-aside ones only once the engineer confirmed them)."""
    return [s if opts.include_set_aside else s[~a] for s, a in zip(per, site.aside)]


def figures(net, kit: SiteKit, site: SiteData, meta, opts: AdaptOptions) -> tuple[dict, list[np.ndarray]]:
    held = cross_validate(net, kit, site, opts)
    kept_held, kept_stock = _kept(site, held, opts), _kept(site, site.stock, opts)
    chosen = site_threshold(kept_held, site.minutes, opts.alerts)
    if chosen is None:
        raise ModelError(f"site {opts.site}: {refusal(kept_held, site.minutes, opts.alerts)}; nothing was written")
    t = chosen["threshold"]
    return {"site_threshold": t, "rule": "lowest threshold >= 0.5 with held-out specificity >= 0.97 and <= 0.5 alert "
                                         "episodes per minute (engines/lab/site/operating.py)",
            "stock": {"at_stock_threshold": footage_figures(kept_stock, site.minutes, meta.threshold, opts.alerts),
                      "check_positives_sensitivity": _sens(scores(net, kit.check), meta.threshold)},
            "threshold_only": site_threshold(kept_stock, site.minutes, opts.alerts),   # a new threshold alone
            "commissioned_held_out": chosen, "per_recording": per_recording(
                [r.name for r in site.recs], kept_stock, kept_held, site.minutes, meta.threshold, t, opts.alerts),
            "set_aside": {"frames": int(sum(a.sum() for a in site.aside)), "trained_on": opts.include_set_aside}}, held


def _sens(s: np.ndarray, t: float) -> float | None:
    return round(float((s >= t).mean()), 4) if len(s) else None


@dataclass(frozen=True)
class Commissioned:
    """A site model in memory, before anything is written: the fine-tuned network, the stock model's metadata and
    kit, the report's figures (held out by recording), the site's frames and the held-out scores."""
    net: object
    meta: object
    kit: SiteKit
    report: dict
    site: SiteData
    held: list


def commission(model: Path, paths: list[str], opts: AdaptOptions, positives: list | None = None) -> Commissioned:
    """Commission ``model`` at the tower of ``paths`` in memory (writes nothing). ``positives`` (procedure records):
    the site's reviewed polyps (positives.Positive), their ``group`` the name of the recording they were seen in;
    cross-validation then holds each recording's polyps out with it."""
    from engines.lab.site.model import load_model
    net, meta = load_model(Path(model))
    check_network(net)
    kit = load_kit(kit_path(Path(model)), meta.model_id)
    site = load_site(net, meta, paths, opts)
    if positives is not None:
        from engines.lab.site.positives import check_enough, load_positives, site_polyp_figures
        check_enough(positives, [r.name for r in site.recs])
        site.pos = load_positives(net, meta, positives)
    report, held = figures(net, kit, site, meta, opts)
    t = report["site_threshold"]
    if site.pos is not None:
        report["site_polyps"] = site_polyp_figures(site.pos, site.pos_held, scores(net, site.pos.f16),
                                                   meta.threshold, t, opts.alerts)
    final = finetune(net, np.concatenate([_train_frames(site, i, opts) for i in range(len(site.recs))]), kit,
                     opts.finetune, site.pos)
    report["commissioned_check_positives_sensitivity"] = _sens(scores(final, kit.check), t)
    return Commissioned(final, meta, kit, report, site, held)


def adapt(model: Path, paths: list[str], opts: AdaptOptions, out: Path, positives: list | None = None) -> dict:
    """Commission ``model`` at the tower of ``paths`` (``commission``); writes ``out`` (+ .pt, INT8 twin,
    .commission.json/.html), never over a file it does not own (``check_out``, before any work)."""
    model, out = Path(model), Path(out)
    check_out(out, model, opts.replace, paths)
    c = commission(model, paths, opts, positives)
    report, site, meta = c.report, c.site, c.meta
    report.update(site=opts.site, commissioned_from=meta.model_id, model_path=str(model), method="last stage and head fine-tuned "
                  f"({opts.finetune.steps} steps, lr {opts.finetune.lr}) with the site's frames as negatives beside the "
                  f"kit's evidence ({c.kit.describe()})", date_utc=datetime.datetime.now(datetime.timezone.utc)
                  .strftime("%Y-%m-%dT%H:%M:%SZ"),
                  footage=[{"path": str(r.path), "sha256": footage_hash(r.path), "frames_used": len(r.frames),
                            "size": list(r.size)} for r in site.recs])
    from engines.lab.site.write import write_site_model
    return write_site_model(c.net, meta, report, site, c.held, out)
