"""CADe metrics from per-frame detections and ground truth (keys documented in docs/REPLAY.md)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.truth import GroundTruth
from engines.lab.evaluation.metrics import auroc, box_iou, sens_spec
from stream.detection import AlertState, Detection

FA_MIN_DURATIONS_S = (0.5, 1.0)     # studies count an alert as a false positive only when it lasts this long


@dataclass(frozen=True)
class Episode:
    """A run of consecutive processed frames with the alert on: [first, last] frame indices."""

    first: int
    last: int


def alert_episodes(dets: list[Detection], sequence_starts: tuple[int, ...] = ()) -> list[Episode]:
    """Alert-on runs over processed frames in frame order (a dropped frame does not break a run; the start of a
    new recorded sequence does)."""
    out: list[Episode] = []
    start = prev = None
    starts = set(sequence_starts)
    for d in sorted(dets, key=lambda d: d.frame_index):
        on = d.alert is AlertState.ON
        if start is not None and prev is not None and any(prev < s <= d.frame_index for s in starts):
            out.append(Episode(start, prev))
            start = None
        if on and start is None:
            start = d.frame_index
        if not on and start is not None:
            out.append(Episode(start, prev))
            start = None
        prev = d.frame_index
    if start is not None:
        out.append(Episode(start, prev))
    return out


def _r(v, nd=4):
    return None if v is None else round(float(v), nd)


def _stats(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "median": None, "mean": None, "min": None, "max": None}
    a = np.asarray(values, float)
    return {"count": len(values), "median": _r(np.median(a)), "mean": _r(a.mean()), "min": _r(a.min()),
            "max": _r(a.max())}


def episode_metrics(episodes: list[Episode], fps: float, minutes: float, positive: np.ndarray | None) -> dict:
    """Alert episodes; with ``positive`` (per frame), those overlapping no positive frame are false alarms."""
    def dur_s(e: Episode) -> float:
        return (e.last - e.first + 1) / fps
    out = {"alert_episodes": len(episodes), "alert_episodes_per_minute": _r(len(episodes) / minutes if minutes else None),
           "alert_durations_s": [_r(dur_s(e), 3) for e in episodes]}
    if positive is None:
        return out
    fa = [e for e in episodes if not positive[e.first:e.last + 1].any()]
    out["false_alarms"] = {
        "count": len(fa), "per_minute": _r(len(fa) / minutes if minutes else None),
        "durations_s": [_r(dur_s(e), 3) for e in fa],
        "episodes": [[e.first, e.last] for e in fa],
    }
    for m in FA_MIN_DURATIONS_S:
        n = sum(dur_s(e) >= m for e in fa)
        out["false_alarms"][f"count_ge_{m}s"] = n
        out["false_alarms"][f"per_minute_ge_{m}s"] = _r(n / minutes if minutes else None)
    return out


def compute(truth: GroundTruth | None, dets: list[Detection], fps: float, frame_count: int,
            threshold: float, sequence_starts: tuple[int, ...] = ()) -> dict:
    """All replay metrics. ``dets`` are the processed frames' detections (any order). ``sequence_starts``: frame
    indices where another recorded sequence begins (the alert filter was reset there; episodes end there)."""
    dets = sorted(dets, key=lambda d: d.frame_index)
    ok = [d for d in dets if not d.error]
    minutes = frame_count / fps / 60 if fps else 0.0
    m: dict = {"frames": frame_count, "fps": fps, "duration_s": _r(frame_count / fps if fps else None, 3),
               "processed": len(dets), "errors": len(dets) - len(ok), "threshold": threshold,
               "sequences": 1 + len(sequence_starts), "sequence_starts": list(sequence_starts),
               "ground_truth": truth is not None}
    episodes = alert_episodes(ok, sequence_starts)
    if truth is None:
        m.update(episode_metrics(episodes, fps, minutes, None))
        return m
    positive = np.array([bool(f) for f in truth.frames])
    y = np.array([positive[d.frame_index] for d in ok])
    s = np.array([d.score for d in ok])
    alert = np.array([d.alert is AlertState.ON for d in ok])
    sens, spec = sens_spec(y, s >= threshold)
    asens, aspec = sens_spec(y, alert)
    m["frame_raw"] = {"auroc": _r(auroc(y, s)), "sensitivity": _r(sens), "specificity": _r(spec),
                      "positives": int(y.sum()), "negatives": int((~y).sum())}
    m["frame_alert"] = {"sensitivity": _r(asens), "specificity": _r(aspec),
                        "tp": int((alert & y).sum()), "fn": int((~alert & y).sum()),
                        "tn": int((~alert & ~y).sum()), "fp": int((alert & ~y).sum())}
    on_frames = {d.frame_index for d in ok if d.alert is AlertState.ON}
    polyps = []
    for track in truth.polyps:
        frames = [i for a, b in track.intervals for i in range(a, b + 1)]
        first_seen = frames[0]
        hits = [i for i in frames if i in on_frames]
        entry = {"id": track.polyp_id, "kind": track.kind, "visible_frames": len(frames),
                 "first_visible": first_seen, "detected": bool(hits)}
        if hits:
            entry["first_alert"] = hits[0]
            entry["time_to_detection_frames"] = hits[0] - first_seen
            entry["time_to_detection_ms"] = _r((hits[0] - first_seen) / fps * 1000, 1)
            entry["alert_coverage"] = _r(len(hits) / len(frames))
        polyps.append(entry)
    ttd = [p["time_to_detection_ms"] for p in polyps if p["detected"]]
    m["polyps"] = {"count": len(polyps), "detected": sum(p["detected"] for p in polyps),
                   "detection_rate": _r(sum(p["detected"] for p in polyps) / len(polyps)) if polyps else None,
                   "time_to_detection_ms": _stats(ttd),
                   "time_to_detection_frames": _stats([p["time_to_detection_frames"] for p in polyps if p["detected"]]),
                   "each": polyps}
    ious = []
    for d in ok:
        tf = truth.frames[d.frame_index]
        if tf and d.alert is AlertState.ON:
            ious.append(max((box_iou(fp.box, (b.x0, b.y0, b.x1, b.y1)) for fp in tf for b in d.boxes), default=0.0))
    m["box_iou_true_positive"] = _stats(ious) | {"fraction_ge_0_5": _r(np.mean(np.array(ious) >= 0.5)) if ious else None}
    m.update(episode_metrics(episodes, fps, minutes, positive))
    return m
