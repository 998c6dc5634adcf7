"""The site's operating point, by a rule written down before any site was scored (docs/EXPERIMENTS.md,
"Commissioning protocol"): on the site's polyp-free frames scored by models that did not train on their recording
(a cross-validation by recording), the LOWEST threshold, not under FLOOR, at which

1. the frames' specificity is at least MIN_SPECIFICITY, and
2. the live alert filter (the configured k-of-n and hysteresis) raises at most MAX_EPISODES_PER_MINUTE alert
   episodes per minute of footage.

It may lower the model's threshold at a quiet tower as well as raise it at a noisy one."""
from __future__ import annotations

import dataclasses

import numpy as np

from engines.runtime.alerts import AlertFilter, AlertsConfig, AlertState

FLOOR = 0.5                      # never below even odds: boxes are outlined at min(threshold, 0.5)
CEILING = 0.995
MIN_SPECIFICITY = 0.97           # a margin over the 0.95 asked on held-out recordings
MAX_EPISODES_PER_MINUTE = 0.5    # one false alert episode per two minutes of polyp-free withdrawal at most
GRID = np.round(np.arange(FLOOR, CEILING + 1e-9, 0.005), 3)


def episodes(scores: np.ndarray, threshold: float, alerts: AlertsConfig) -> tuple[int, int]:
    """(alert episodes, frames with the alert on) of the live filter over one recording's scores in order."""
    f = AlertFilter.from_config(dataclasses.replace(alerts, on_threshold=threshold, off_threshold=0.0), threshold)
    n = on_frames = 0
    was = False
    for s in scores:
        on = f.update(float(s)) is AlertState.ON
        n += on and not was
        on_frames += on
        was = on
    return n, on_frames


def footage_figures(scores_by_recording: list[np.ndarray], minutes: list[float], threshold: float,
                    alerts: AlertsConfig) -> dict:
    allv = np.concatenate(scores_by_recording) if scores_by_recording else np.zeros(0)
    eps = [episodes(s, threshold, alerts) for s in scores_by_recording]
    total_min = sum(minutes)
    return {"threshold": round(float(threshold), 4), "frames": int(len(allv)),
            "specificity": round(float((allv < threshold).mean()), 4) if len(allv) else None,
            "episodes": sum(e[0] for e in eps), "alert_on_frames": sum(e[1] for e in eps),
            "episodes_per_minute": round(sum(e[0] for e in eps) / total_min, 3) if total_min > 0 else None}


def site_threshold(scores_by_recording: list[np.ndarray], minutes: list[float], alerts: AlertsConfig) -> dict | None:
    """The rule above; None when no threshold up to CEILING meets it (the tower cannot be made quiet)."""
    for t in GRID:
        fig = footage_figures(scores_by_recording, minutes, float(t), alerts)
        if fig["specificity"] >= MIN_SPECIFICITY and (fig["episodes_per_minute"] or 0) <= MAX_EPISODES_PER_MINUTE:
            return fig
    return None


def refusal(scores_by_recording: list[np.ndarray], minutes: list[float], alerts: AlertsConfig) -> str:
    """Why no threshold meets the rule, and whether the footage can say so: at CEILING the tower is unfit only when the
    95% interval of its alert episodes per minute lies over the limit (or specificity fails); a rate over a few
    held-out seconds is an interval that may span it, and then how much more footage is needed is said instead."""
    from engines.lab.site.rates import poisson_interval, rests_on
    fig = footage_figures(scores_by_recording, minutes, CEILING, alerts)
    total = sum(minutes)
    lo, hi = poisson_interval(fig["episodes"], total)
    if fig["specificity"] is not None and fig["specificity"] >= MIN_SPECIFICITY and lo <= MAX_EPISODES_PER_MINUTE:
        return (f"even at {CEILING} the held-out recordings cannot be called quiet or not: "
                + rests_on(fig["episodes"], total, MAX_EPISODES_PER_MINUTE) + "; commission on more footage")
    return (f"even at {CEILING} the commissioned model is not quiet on the held-out recordings ({fig}; 95% interval "
            f"{lo}–{hi} episodes per minute): this tower is unfit for this model")


def per_recording(names: list[str], stock: list[np.ndarray], held: list[np.ndarray], minutes: list[float],
                  stock_t: float, site_t: float, alerts: AlertsConfig) -> dict:
    """Each recording (procedure) held out: its false-alarm episodes before (the stock model at its threshold) and
    after (the model fine-tuned without it, at the site threshold), with the 95% interval of the rate."""
    from engines.lab.site.rates import poisson_interval
    out = {}
    for name, s, h, m in zip(names, stock, held, minutes):
        b, a = episodes(s, stock_t, alerts)[0], episodes(h, site_t, alerts)[0]
        out[name] = {"minutes": round(m, 3), "before": {"episodes": b, "per_minute_ci95": list(poisson_interval(b, m))},
                     "after": {"episodes": a, "per_minute_ci95": list(poisson_interval(a, m))}}
    return out
