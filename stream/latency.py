"""Latency percentiles of nanosecond durations (the live statistics, the overlay, benchmarks).

``percentiles_ms`` is exact, for a bounded list (a benchmark, the heartbeat's window). ``LatencyHistogram`` is for
a run that may last days: fixed memory (log-spaced bins, 1% wide), percentiles within 1% of the exact ones, the
maximum exact, and exact counts at the Prometheus bucket bounds."""
from __future__ import annotations

import bisect
import math

import numpy as np

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.033, 0.05, 0.1, 0.25, 1.0)
_BUCKETS_NS = tuple(round(b * 1e9) for b in LATENCY_BUCKETS_S)
_MIN_NS = 1_000                 # 1 us: shorter durations share the first bin
_RATIO = 1.01                   # each bin 1% wider than the last
_LOG_RATIO = math.log(_RATIO)
_BINS = int(math.log(1e12 / _MIN_NS) / _LOG_RATIO) + 2      # up to 1000 s; longer share the last bin


def percentiles_ms(values_ns: list[int] | np.ndarray) -> dict[str, float | None]:
    """p50/p95/p99/p99.9/max (and count) in milliseconds of nanosecond durations."""
    v = np.asarray(values_ns, np.float64) / 1e6
    if len(v) == 0:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "p99_9": None, "max": None}
    p50, p95, p99, p999 = np.percentile(v, [50, 95, 99, 99.9])
    return {"count": int(len(v)), "p50": round(float(p50), 3), "p95": round(float(p95), 3),
            "p99": round(float(p99), 3), "p99_9": round(float(p999), 3), "max": round(float(v.max()), 3)}


class LatencyHistogram:
    """Nanosecond durations in constant memory (about 2800 bins, whatever the run's length)."""

    def __init__(self):
        self.bins = [0] * _BINS            # a list: a Python int += is cheaper than a NumPy one
        self.le_counts = [0] * len(_BUCKETS_NS)     # durations <= each Prometheus bound (exact)
        self.count = 0
        self.sum_ns = 0
        self.max_ns = 0

    def add(self, ns: int) -> None:
        i = 0 if ns <= _MIN_NS else min(_BINS - 1, 1 + int(math.log(ns / _MIN_NS) / _LOG_RATIO))
        self.bins[i] += 1
        j = bisect.bisect_left(_BUCKETS_NS, ns)
        if j < len(self.le_counts):
            self.le_counts[j] += 1
        self.count += 1
        self.sum_ns += ns
        self.max_ns = max(self.max_ns, ns)

    def __len__(self) -> int:
        return self.count

    def buckets(self) -> list[tuple[float, int]]:
        """(upper bound in seconds, cumulative count) at LATENCY_BUCKETS_S, as Prometheus wants them."""
        return list(zip(LATENCY_BUCKETS_S, np.cumsum(self.le_counts).tolist()))

    def percentiles_ms(self) -> dict[str, float | None]:
        if self.count == 0:
            return percentiles_ms([])
        cum = np.cumsum(np.asarray(self.bins, np.int64))
        out = {"count": self.count}
        for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("p99_9", 99.9)):
            i = int(np.searchsorted(cum, math.ceil(q / 100 * self.count)))
            mid = _MIN_NS * _RATIO ** (i - 0.5) if i > 0 else _MIN_NS      # the bin's geometric middle
            out[name] = round(min(mid, self.max_ns) / 1e6, 3)
        out["max"] = round(self.max_ns / 1e6, 3)
        return out
