"""When the pipeline sends its heartbeat: on a fixed grid of 1/heartbeat_hz, so that a beat sent late (the loop was
busy with a frame) does not push every later beat back. Checked from the loop between frames."""
from __future__ import annotations


class BeatClock:
    """``due(now_ns)`` is true once per period of the grid that starts at the first call."""

    def __init__(self, hz: float):
        if not hz > 0:
            raise ValueError(f"BeatClock: expected a rate > 0, got {hz!r}")
        self.period_ns = int(1e9 / hz)
        self.next_ns: int | None = None

    def due(self, now_ns: int) -> bool:
        if self.next_ns is None:
            self.next_ns = now_ns
        if now_ns < self.next_ns:
            return False
        self.next_ns += self.period_ns
        if self.next_ns <= now_ns:          # behind by a whole period (a stall): a new grid from now
            self.next_ns = now_ns + self.period_ns
        return True

    def wait_s(self, now_ns: int, cap_s: float) -> float:
        """How long the loop may wait for a frame before the next beat is due (at most ``cap_s``)."""
        if self.next_ns is None:
            return 0.0
        return max(0.0, min(cap_s, (self.next_ns - now_ns) / 1e9))
