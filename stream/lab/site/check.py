"""The site check: the deployed path (model, precision, preprocessing, the live alert filter) over a hospital's
polyp-free footage, and a verdict written down before any site was scored (docs/EXPERIMENTS.md, "Site check"):

- ``fits``: at most MAX_EPISODES_PER_MINUTE alert episodes per minute, the alert on in at most MAX_ON_SHARE of the
  frames, and at least MIN_SPECIFICITY of the frames under the threshold;
- ``unfit``: the alert on in more than UNFIT_ON_SHARE of the frames: half the polyp-free footage under alert is
  either not polyp-free or a picture this model cannot serve (commissioning would refuse it too);
- ``commission`` otherwise: the tower alarms, and its footage can commission a site model (polypwatch adapt);
- ``undecided`` (issue 49): the rate of alert episodes is the deciding figure and its 95% interval spans
  MAX_EPISODES_PER_MINUTE: a few minutes of footage cannot say; the reason gives the interval and how many more
  minutes are needed (engines/lab/site/rates.py). Eight seconds with no alert is not "fits", and one episode in
  them is not "six a minute".
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from engines.runtime.alerts import AlertState
from stream.config import Config
from stream.detection import Detection

MAX_EPISODES_PER_MINUTE = 0.5
MAX_ON_SHARE = 0.02
MIN_SPECIFICITY = 0.95
UNFIT_ON_SHARE = 0.5
MIN_FRAMES = 100
MAX_GALLERY = 60


@dataclass
class Alarm:
    """One alert episode: the frame at its peak score with the detector's boxes."""
    recording: str
    first: int
    last: int
    peak: Detection
    image: np.ndarray = field(repr=False)


@dataclass
class RecordingResult:
    name: str
    fps: float
    scores: np.ndarray
    alert_on: np.ndarray
    alarms: list[Alarm]
    unreadable: int = 0             # frames of a folder that could not be read (skipped, counted, said)

    @property
    def minutes(self) -> float:
        return len(self.scores) / self.fps / 60 if self.fps > 0 else 0.0


def check_config(cfg: Config) -> Config:
    capture = dataclasses.replace(cfg.capture, pace=False, loop=False)
    publisher = dataclasses.replace(cfg.publisher, endpoint="tcp://127.0.0.1:*", send_frames=False)
    pipeline = dataclasses.replace(cfg.pipeline, detections_log="", max_frames=0, max_seconds=0.0)
    record = dataclasses.replace(cfg.record, dir="")
    return dataclasses.replace(cfg, capture=capture, publisher=publisher, pipeline=pipeline, record=record)


def run_recording(inp, cfg: Config, stop=None) -> tuple[RecordingResult, dict]:
    """One recording through the live pipeline, every frame; (its result, the model's identity)."""
    from stream.pipeline import Pipeline
    pipe = Pipeline(check_config(cfg), source=inp.source)
    if stop is not None:
        pipe.stop_event = stop
    dets: list[Detection] = []
    alarms: list[Alarm] = []
    cur: list = []                                  # [first, last, peak detection, peak image] of the episode in flight

    def on_detection(d: Detection, frame) -> None:
        dets.append(d)
        if d.alert is AlertState.ON:
            if not cur:
                cur.extend([d.frame_index, d.frame_index, d, frame.image])
            else:
                cur[1] = d.frame_index
                if d.score > cur[2].score:
                    cur[2], cur[3] = d, frame.image
        elif cur:
            alarms.append(Alarm(inp.name, cur[0], cur[1], cur[2], cur[3]))
            cur.clear()
    pipe.on_detection = on_detection
    summary = pipe.run()
    if cur:
        alarms.append(Alarm(inp.name, cur[0], cur[1], cur[2], cur[3]))
    ok = [d for d in dets if not d.error]
    ident = {"model_id": pipe.detector.model_id, "threshold": pipe.alerts.on, **pipe.detector.precision.record(),
             "site": pipe.detector.meta.training.get("site_adaptation", {}).get("site", "")}
    return RecordingResult(inp.name, inp.fps, np.array([d.score for d in ok]),
                           np.array([d.alert is AlertState.ON for d in ok]), alarms,
                           len(summary.get("unreadable_frames") or ()) and summary["read_errors"]), ident


def verdict(frames: int, on_share: float, episodes: int, minutes: float, specificity: float) -> tuple[str, str]:
    from engines.lab.site.rates import poisson_interval, rests_on
    per_minute = episodes / minutes if minutes > 0 else 0.0
    lo, hi = poisson_interval(episodes, minutes)
    if on_share > UNFIT_ON_SHARE:
        return "unfit", (f"the alert is on in {on_share:.0%} of these polyp-free frames (over {UNFIT_ON_SHARE:.0%}): "
                         f"either the footage is not polyp-free (look at the gallery) or this model cannot serve this "
                         f"tower's picture")
    if lo > MAX_EPISODES_PER_MINUTE or on_share > MAX_ON_SHARE or specificity < MIN_SPECIFICITY:
        return "commission", (f"{per_minute:.2f} alert episodes per minute (95% interval {lo}–{hi}), alert on in "
                              f"{on_share:.1%} of frames, specificity {specificity:.3f} (fits: at most "
                              f"{MAX_EPISODES_PER_MINUTE}, {MAX_ON_SHARE:.0%}, at least {MIN_SPECIFICITY}): commission a "
                              f"site model on this footage (polypwatch adapt) and check again")
    if hi > MAX_EPISODES_PER_MINUTE:
        return "undecided", ("no verdict yet: " + rests_on(episodes, minutes, MAX_EPISODES_PER_MINUTE) +
                             f" (alert on in {on_share:.1%} of frames, specificity {specificity:.3f})")
    return "fits", (f"{per_minute:.2f} alert episodes per minute (95% interval {lo}–{hi}), alert on in {on_share:.1%} "
                    f"of frames, specificity {specificity:.3f}: within {MAX_EPISODES_PER_MINUTE}, {MAX_ON_SHARE:.0%} "
                    f"and {MIN_SPECIFICITY}")


def summarise(results: list[RecordingResult], ident: dict) -> dict:
    scores = np.concatenate([r.scores for r in results])
    on = np.concatenate([r.alert_on for r in results])
    minutes = sum(r.minutes for r in results)
    n_eps = sum(len(r.alarms) for r in results)
    t = ident["threshold"]
    on_share = float(on.mean()) if len(on) else 0.0
    per_minute = n_eps / minutes if minutes > 0 else 0.0
    spec = float((scores < t).mean()) if len(scores) else 1.0
    v, why = verdict(len(scores), on_share, n_eps, minutes, spec)
    bad = sum(r.unreadable for r in results)
    if bad:
        why += f"; {bad} frame(s) could not be read and were skipped (see each recording's unreadable_frames)"
    alarms = sorted((a for r in results for a in r.alarms), key=lambda a: -a.peak.score)
    from engines.lab.site.rates import poisson_interval
    return {"verdict": v, "reason": why, **ident, "frames": int(len(scores)), "minutes": round(minutes, 3),
            "alert_on_share": round(on_share, 4), "episodes": n_eps, "episodes_per_minute": round(per_minute, 3),
            "episodes_per_minute_ci95": list(poisson_interval(n_eps, minutes)),
            "alarming_frames": int(on.sum()), "specificity": round(spec, 4),
            "score_quantiles": {q: round(float(np.quantile(scores, v)), 4) for q, v in
                                (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))} if len(scores) else {},
            "unreadable_frames": bad,
            "recordings": [{"name": r.name, "frames": int(len(r.scores)), "fps": r.fps, "episodes": len(r.alarms),
                            "unreadable_frames": r.unreadable,
                            "alert_on_share": round(float(r.alert_on.mean()), 4) if len(r.alert_on) else 0.0,
                            "specificity": round(float((r.scores < t).mean()), 4) if len(r.scores) else None}
                           for r in results],
            "gallery": [{"recording": a.recording, "first_frame": a.first, "last_frame": a.last,
                         "peak_frame": a.peak.frame_index, "peak_score": round(a.peak.score, 4),
                         "boxes": [[round(v, 4) for v in b.to_list()] for b in a.peak.boxes]}
                        for a in alarms[:MAX_GALLERY]]}
