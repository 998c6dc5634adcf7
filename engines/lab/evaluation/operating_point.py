"""An operating point a clinician feels: the threshold and the alert filter chosen together on whole sequences.

A frame threshold set on one source's handful of polyp-free frames decides for every hospital. Here the unit is the
sequence as the endoscopist sees it: on polyp-free sequences, how much of the time the alert is on and how many alert
episodes a minute; on polyp sequences, whether each polyp raises the alert and how soon. The rule (docs/EXPERIMENTS.md,
fixed before it was scored): for each alert filter (k of the last n frames over the threshold raise it, n - 1 under
0.8 x the threshold drop it), the lowest threshold of a grid at which the alert is on in at most ``pooled_max`` of all
polyp-free sequence frames, and no source's share is shown to exceed ``source_max`` (the lower end of its 95% Wilson
interval is at most ``source_max``: a 31-frame sequence can veto a threshold only with evidence, not with one
alert episode); then the filter that detects the most polyps, then the shortest median time to the first alert.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engines.lab.evaluation.metrics import wilson
from engines.runtime.alerts import AlertFilter, AlertsConfig, AlertState

FILTERS = ((3, 5), (4, 6), (5, 8))          # (k, n): the live default first


@dataclass(frozen=True)
class Sequence:
    """One recording's frame scores in order, and where its polyps are visible (none: a polyp-free sequence)."""

    name: str
    source: str
    scores: np.ndarray                                               # N frame scores, in frame order
    fps: float
    polyps: dict[int, tuple[int, ...]] = field(default_factory=dict)  # polyp id -> its visible frame indices

    def __post_init__(self) -> None:
        n = len(self.scores)
        for pid, frames in self.polyps.items():
            if any(not 0 <= f < n for f in frames):
                raise ValueError(f"sequence {self.name}: polyp {pid} visible outside its {n} frames")
        if not self.fps > 0:
            raise ValueError(f"sequence {self.name}: expected fps > 0, got {self.fps}")

    @property
    def polyp_free(self) -> bool:
        return not self.polyps


def alert_on(scores: np.ndarray, threshold: float, k: int, n: int) -> np.ndarray:
    """Per frame, whether the live alert filter (``engines.runtime.alerts.AlertFilter``) is on."""
    f = AlertFilter(threshold, 0.8 * threshold, n, k, n - 1)
    return np.array([f.update(float(s)) is AlertState.ON for s in scores], bool)


def episodes(on: np.ndarray) -> int:
    return int(on[0]) + int(np.sum(on[1:] & ~on[:-1])) if len(on) else 0


def measure(seqs: list[Sequence], threshold: float, k: int, n: int) -> dict:
    """What this threshold and filter do on every sequence."""
    free = {}
    for s in (s for s in seqs if s.polyp_free):
        on = alert_on(s.scores, threshold, k, n)
        d = free.setdefault(s.source, {"frames": 0, "on": 0, "episodes": 0, "minutes": 0.0})
        d["frames"] += len(on)
        d["on"] += int(on.sum())
        d["episodes"] += episodes(on)
        d["minutes"] += len(on) / s.fps / 60
    for d in free.values():
        d["alert_on_share"] = d["on"] / d["frames"] if d["frames"] else 0.0
        d["episodes_per_minute"] = d["episodes"] / d["minutes"] if d["minutes"] else 0.0
    frames = sum(d["frames"] for d in free.values())
    polyps, delays = [], []
    for s in (s for s in seqs if not s.polyp_free):
        on = alert_on(s.scores, threshold, k, n)
        for pid, vis in sorted(s.polyps.items()):
            hits = [f for f in vis if on[f]]
            polyps.append({"sequence": s.name, "source": s.source, "polyp": pid, "detected": bool(hits),
                           "first_alert_ms": round((hits[0] - vis[0]) / s.fps * 1000, 1) if hits else None})
            if hits:
                delays.append(polyps[-1]["first_alert_ms"])
    return {"threshold": round(threshold, 4), "filter": f"{k} of {n}",
            "alert_on_share_pooled": sum(d["on"] for d in free.values()) / frames if frames else 0.0,
            "polyp_free": free, "polyps_detected": sum(p["detected"] for p in polyps), "polyps": len(polyps),
            "median_first_alert_ms": float(np.median(delays)) if delays else None, "each_polyp": polyps}


def choose(seqs: list[Sequence], grid=None, filters=FILTERS, pooled_max: float = 0.02,
           source_max: float = 0.10) -> dict:
    """The rule of the module docstring. Returns the chosen point's ``measure`` with ``met`` (False when no threshold
    of the grid keeps the polyp-free sequences quiet enough: the highest is reported) and every filter's choice."""
    if not any(s.polyp_free for s in seqs):
        raise ValueError("operating point: no polyp-free sequence to hold the alert-on share")
    grid = np.round(np.arange(0.30, 0.985, 0.01), 2) if grid is None else np.asarray(grid)
    per_filter = []
    for k, n in filters:
        best = None
        for t in sorted(grid):
            m = measure(seqs, float(t), k, n)
            if m["alert_on_share_pooled"] <= pooled_max and all(
                    wilson(d["on"], d["frames"])[0] <= source_max for d in m["polyp_free"].values()):
                best = {**m, "met": True}
                break
        per_filter.append(best or {**measure(seqs, float(max(grid)), k, n), "met": False})
    ranked = sorted(per_filter, key=lambda m: (not m["met"], -m["polyps_detected"],
                                               m["median_first_alert_ms"] if m["median_first_alert_ms"] is not None
                                               else float("inf")))
    return {**ranked[0], "candidates": [{k: v for k, v in m.items() if k != "each_polyp"} for m in per_filter],
            "rule": {"pooled_max": pooled_max, "source_max": source_max, "filters": [f"{k} of {n}" for k, n in filters]}}


def live_filter() -> tuple[int, int]:
    """The live alert filter (k of n): alerts.min_hits of alerts.window of the default configuration."""
    alerts = AlertsConfig()
    return alerts.min_hits, alerts.window


def apply_to_model(model: str | Path, chosen: dict, sequences: list[str]):
    """Write the rule's threshold into the model's metadata and return the new metadata. The model's boxes stay
    outlined at most at the threshold where the score is the map's maximum (every alert keeps its box); the rule's
    figures go into ``scores["operating_point"]``. Refused (ValueError) when the rule was not met, or when its filter
    is not the live default: the threshold alone would then be applied under another filter than it was chosen for."""
    from engines.runtime.metadata import read_onnx_metadata, write_onnx_metadata
    if not chosen["met"]:
        raise ValueError("--apply: the rule is not met (no threshold of the grid keeps the polyp-free sequences quiet "
                         "enough); the model keeps its threshold")
    live = "%d of %d" % live_filter()
    if chosen["filter"] != live:
        raise ValueError(f"--apply: the rule chose the filter {chosen['filter']}, not the live {live}; set "
                         f"alerts.window and alerts.min_hits with the threshold in the site's configuration instead")
    meta = read_onnx_metadata(model)
    thr = float(chosen["threshold"])
    box = min(thr, 0.5) if meta.decision == "map_max" else meta.box_threshold
    figures = {k: v for k, v in chosen.items() if k not in ("each_polyp", "candidates")}
    frame_rule = meta.scores.get("operating_point", {}).get("frame_rule_threshold", meta.threshold)   # kept on reapply
    new = dataclasses.replace(meta, threshold=thr, box_threshold=box, scores={
        **meta.scores, "operating_point": {**figures, "frame_rule_threshold": frame_rule, "sequences": sequences}})
    write_onnx_metadata(model, new)
    return new
