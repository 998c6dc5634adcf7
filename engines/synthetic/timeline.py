"""What happens when in a synthetic clip: scope motion, polyp appearances, water flushes. Pure functions of time."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PolypEvent:
    """One polyp's passage through the view: enters at ``t0``, leaves at ``t1`` (seconds)."""

    polyp_id: int
    t0: float
    t1: float
    enter_from: tuple[float, float]   # unit vector: side of the view it comes in from
    exit_to: tuple[float, float]
    dwell_a: tuple[float, float]      # where it sits (fraction of the view's half-size from the centre)
    dwell_b: tuple[float, float]
    radius: float                     # head radius, fraction of the view's height
    occlusion: tuple[float, float, float] | None   # (start, end, angle): a fold sweeps over it


@dataclass(frozen=True)
class Flush:
    """Water flush / lens wash: the view is washed out, nothing can be seen."""

    t0: float
    t1: float


@dataclass(frozen=True)
class Timeline:
    events: tuple[PolypEvent, ...]
    flushes: tuple[Flush, ...]
    motion: np.ndarray   # 5 sinusoid parameter rows (amplitude, period, phase) per axis

    def camera(self, t: float) -> tuple[float, float, float, float]:
        """(zoom, rotation radians, dx, dy as fractions of the view size) at time t."""
        m = self.motion
        def s(row):
            return float(sum(a * np.sin(2 * np.pi * t / p + ph) for a, p, ph in row))
        return 1.25 + s(m[0]), s(m[1]), s(m[2]), s(m[3])

    def flushing(self, t: float) -> float:
        """0 (clear) .. 1 (fully washed out)."""
        for f in self.flushes:
            if f.t0 <= t <= f.t1:
                x = (t - f.t0) / (f.t1 - f.t0)
                return float(np.clip(min(x, 1 - x) * 6, 0, 1))
        return 0.0


def _unit(rng: np.random.Generator) -> tuple[float, float]:
    a = rng.uniform(0, 2 * np.pi)
    return (float(np.cos(a)), float(np.sin(a)))


def make_timeline(seed: int, seconds: float) -> Timeline:
    rng = np.random.default_rng([seed, 1])
    motion = np.array([
        [(0.18, 7.0, rng.uniform(0, 6)), (0.08, 3.1, rng.uniform(0, 6)), (0.03, 1.3, rng.uniform(0, 6))],
        [(0.45, 11.0, rng.uniform(0, 6)), (0.18, 4.3, rng.uniform(0, 6)), (0.03, 1.1, rng.uniform(0, 6))],
        [(0.10, 5.3, rng.uniform(0, 6)), (0.05, 2.3, rng.uniform(0, 6)), (0.015, 0.7, rng.uniform(0, 6))],
        [(0.10, 6.7, rng.uniform(0, 6)), (0.05, 2.9, rng.uniform(0, 6)), (0.015, 0.9, rng.uniform(0, 6))],
    ])
    events: list[PolypEvent] = []
    flushes: list[Flush] = []
    t = rng.uniform(1.0, 2.5)
    pid = 0
    while t < seconds - 1.0:
        dur = min(rng.uniform(2.5, 6.0), seconds - t)
        pid += 1
        occ = None
        if rng.random() < 0.35 and dur > 2.0:
            o0 = t + rng.uniform(0.8, dur - 1.0)
            occ = (o0, o0 + rng.uniform(0.4, 1.0), float(rng.uniform(0, 2 * np.pi)))
        if rng.random() < 0.3 and dur > 2.5:                        # briefly lost behind a water flush
            f0 = t + rng.uniform(1.0, dur - 1.2)
            flushes.append(Flush(f0, f0 + rng.uniform(0.3, 0.6)))
        ang, rad = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.75)    # on the wall, not in the lumen
        a = np.array([rad * np.cos(ang), rad * np.sin(ang)])
        events.append(PolypEvent(
            polyp_id=pid, t0=float(t), t1=float(t + dur), enter_from=_unit(rng), exit_to=_unit(rng),
            dwell_a=(float(a[0]), float(a[1])), dwell_b=(float(a[0] + rng.uniform(-0.15, 0.15)),
                                                         float(a[1] + rng.uniform(-0.15, 0.15))),
            radius=float(np.exp(rng.uniform(np.log(0.05), np.log(0.20)))), occlusion=occ))
        if rng.random() < 0.2 and t + 1.5 < seconds - 1.0:            # a second polyp in view at once
            pid += 1
            b = -a * 0.8
            d2 = min(rng.uniform(2.0, 4.0), seconds - t - 1.0)
            events.append(PolypEvent(
                polyp_id=pid, t0=float(t + 1.0), t1=float(t + 1.0 + d2), enter_from=_unit(rng), exit_to=_unit(rng),
                dwell_a=(float(b[0]), float(b[1])), dwell_b=(float(b[0]), float(b[1] + 0.1)),
                radius=float(np.exp(rng.uniform(np.log(0.04), np.log(0.10)))), occlusion=None))
        t += dur + rng.uniform(3.0, 10.0)                            # a stretch without polyps
    t = rng.uniform(4.0, 12.0)
    while t < seconds - 1.0:                                         # flushes with no polyp around
        flushes.append(Flush(float(t), float(t + rng.uniform(0.3, 0.7))))
        t += rng.uniform(15.0, 30.0)
    return Timeline(events=tuple(events), flushes=tuple(sorted(flushes, key=lambda f: f.t0)), motion=motion)


def polyp_position(ev: PolypEvent, t: float) -> tuple[float, float] | None:
    """Centre of the polyp in view half-size units (-1..1 is inside the view), or None outside its event."""
    if not (ev.t0 <= t <= ev.t1):
        return None
    dur = ev.t1 - ev.t0
    ramp = min(0.7, dur / 3)
    ax, ay = ev.dwell_a
    bx, by = ev.dwell_b
    if t < ev.t0 + ramp:                                  # enters from outside the view
        x = (t - ev.t0) / ramp
        x = x * x * (3 - 2 * x)
        sx, sy = 1.6 * ev.enter_from[0], 1.6 * ev.enter_from[1]
        return (sx + (ax - sx) * x, sy + (ay - sy) * x)
    if t > ev.t1 - ramp:                                  # leaves
        x = (t - (ev.t1 - ramp)) / ramp
        x = x * x * (3 - 2 * x)
        ex, ey = 1.6 * ev.exit_to[0], 1.6 * ev.exit_to[1]
        return (bx + (ex - bx) * x, by + (ey - by) * x)
    x = (t - ev.t0 - ramp) / max(1e-6, dur - 2 * ramp)
    return (ax + (bx - ax) * x, ay + (by - ay) * x)
