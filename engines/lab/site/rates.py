"""A rate over a few minutes is an interval, not a point: the exact (Garwood) 95% interval of an event rate, and how
many more minutes a verdict needs before its interval stops spanning a limit. Used by the site check's verdict, the
commissioning rule's refusals and the site's truth (alert episodes per minute)."""
from __future__ import annotations

import math


def _poisson_cdf(k: int, mu: float) -> float:
    term = total = math.exp(-mu)
    for i in range(1, k + 1):
        term *= mu / i
        total += term
    return min(1.0, total)


def _solve(target: float, k: int) -> float:
    """mu with P(X <= k; mu) = target (bisection; the CDF falls with mu)."""
    lo, hi = 0.0, max(10.0, 4.0 * (k + 5))
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _poisson_cdf(k, mid) > target else (lo, mid)
    return (lo + hi) / 2


def poisson_interval(k: int, exposure: float, alpha: float = 0.05) -> tuple[float, float]:
    """The exact two-sided interval of a rate: ``k`` events in ``exposure`` (minutes), per minute."""
    if exposure <= 0:
        return 0.0, math.inf
    low = 0.0 if k == 0 else _solve(1 - alpha / 2, k - 1)
    return round(low / exposure, 4), round(_solve(alpha / 2, k) / exposure, 4)


def minutes_needed(k: int, minutes: float, limit: float, cap: float = 10_000.0) -> float | None:
    """Total minutes after which, at the rate seen so far (k in ``minutes``), the interval no longer spans ``limit``;
    None when the rate sits on the limit (no amount of footage at that rate decides it)."""
    rate = k / minutes if minutes > 0 else 0.0
    m = max(minutes, 0.1)
    while m <= cap:
        lo, hi = poisson_interval(round(rate * m), m)
        if hi <= limit or lo > limit:
            return round(m, 1)
        m *= 1.25
    return None


def rests_on(k: int, minutes: float, limit: float, what: str = "alert episodes") -> str:
    lo, hi = poisson_interval(k, minutes)
    need = minutes_needed(k, minutes, limit)
    more = (f"about {max(0.0, need - minutes):.1f} more minutes of footage are needed" if need is not None else
            "its rate sits on the limit: more footage will not decide it")
    return (f"{k} {what} in {minutes:.2f} min: 95% interval {lo}–{hi} per minute spans the limit {limit} per minute; "
            f"{more}")
