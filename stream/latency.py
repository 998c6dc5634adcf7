"""Latency percentiles of nanosecond durations (the live statistics, the overlay, benchmarks)."""
from __future__ import annotations

import numpy as np


def percentiles_ms(values_ns: list[int] | np.ndarray) -> dict[str, float | None]:
    """p50/p95/p99/p99.9/max (and count) in milliseconds of nanosecond durations."""
    v = np.asarray(values_ns, np.float64) / 1e6
    if len(v) == 0:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "p99_9": None, "max": None}
    p50, p95, p99, p999 = np.percentile(v, [50, 95, 99, 99.9])
    return {"count": int(len(v)), "p50": round(float(p50), 3), "p95": round(float(p95), 3),
            "p99": round(float(p99), 3), "p99_9": round(float(p999), 3), "max": round(float(v.max()), 3)}
