"""Per-stage latency and counters of a run: percentiles for the heartbeat and the summary."""
from __future__ import annotations

import time
from collections import deque

from stream.detection import STAGES, AlertState, Detection
from stream.latency import LatencyHistogram, percentiles_ms

RECENT = 300       # frames in the heartbeat's rolling window


class RunStats:
    def __init__(self, budget_ms: float):
        self.budget_ns = int(budget_ms * 1e6)
        # constant memory over a run of days: histograms, not every frame's figures
        self.all = {s: LatencyHistogram() for s in STAGES[1:]}       # capture -> end of stage
        self.stage = {s: LatencyHistogram() for s in STAGES[1:]}     # duration of the stage itself
        self.recent: deque[int] = deque(maxlen=RECENT)
        self.recent_t: deque[int] = deque(maxlen=RECENT)
        self.processed = self.budget_misses = self.errors = 0
        self.alert_episodes = 0            # alert OFF -> ON transitions (the live filter's episodes)
        self._alert_on = False
        self.out_of_order = 0
        self._last_seq = -1
        self.t_start_ns = time.monotonic_ns()
        self.t_first_ns = self.t_last_ns = 0       # first and last processed frame's publish (processing interval)

    def add(self, d: Detection) -> None:
        self.processed += 1
        if d.seq <= self._last_seq:
            self.out_of_order += 1
        self._last_seq = d.seq
        if d.error:
            self.errors += 1
        on = d.alert is AlertState.ON
        self.alert_episodes += on and not self._alert_on
        self._alert_on = on
        prev = d.t_capture_ns
        for s in STAGES[1:]:
            t = d.times_ns.get(s)
            if t is None:
                continue
            self.all[s].add(t - d.t_capture_ns)
            self.stage[s].add(t - prev)
            prev = t
        total = d.latency_ns("publish")
        if total is not None:
            if total > self.budget_ns:
                self.budget_misses += 1
            self.recent.append(total)
        now = time.monotonic_ns()
        self.recent_t.append(now)
        self.t_first_ns = self.t_first_ns or now
        self.t_last_ns = now

    def recent_fps(self) -> float:
        if len(self.recent_t) < 2:
            return 0.0
        span = (self.recent_t[-1] - self.recent_t[0]) / 1e9
        return (len(self.recent_t) - 1) / span if span > 0 else 0.0

    def heartbeat_latency(self) -> dict:
        return {"capture_to_publish": percentiles_ms(list(self.recent))}

    def summary(self) -> dict:
        return {
            "processed": self.processed, "budget_misses": self.budget_misses, "errors": self.errors,
            "out_of_order": self.out_of_order, "budget_ms": self.budget_ns / 1e6, "alert_episodes": self.alert_episodes,
            "seconds": round((time.monotonic_ns() - self.t_start_ns) / 1e9, 3),
            # throughput over the processing interval (first processed frame to last), not the start-up
            "processing_seconds": round((self.t_last_ns - self.t_first_ns) / 1e9, 3),
            "fps": round((self.processed - 1) * 1e9 / (self.t_last_ns - self.t_first_ns), 2)
            if self.processed > 1 and self.t_last_ns > self.t_first_ns else None,
            "capture_to": {s: h.percentiles_ms() for s, h in self.all.items()},
            "stage": {s: h.percentiles_ms() for s, h in self.stage.items()},
        }
