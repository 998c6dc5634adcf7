"""Temporal alert filter: persistence (k of the last n frames) and hysteresis (a lower off-threshold)."""
from __future__ import annotations

from collections import deque

from stream.detection import AlertState


class AlertFilter:
    """Raise when ``min_hits`` of the last ``window`` scores are >= ``on``; drop when ``min_misses`` of them
    are < ``off``. A single noisy frame never raises or drops the alert (with min_hits, min_misses > 1)."""

    def __init__(self, on: float, off: float, window: int, min_hits: int, min_misses: int):
        if not (0 < off <= on < 1):
            raise ValueError(f"AlertFilter: expected 0 < off <= on < 1, got on={on}, off={off}")
        if not (1 <= min_hits <= window and 1 <= min_misses <= window):
            raise ValueError(f"AlertFilter: expected 1 <= min_hits, min_misses <= window ({window}), "
                             f"got {min_hits}, {min_misses}")
        self.on, self.off = on, off
        self.min_hits, self.min_misses = min_hits, min_misses
        self._scores: deque[float] = deque(maxlen=window)
        self.state = AlertState.OFF

    def update(self, score: float) -> AlertState:
        self._scores.append(score)
        if self.state is AlertState.OFF:
            if sum(s >= self.on for s in self._scores) >= self.min_hits:
                self.state = AlertState.ON
        elif sum(s < self.off for s in self._scores) >= self.min_misses:
            self.state = AlertState.OFF
        return self.state

    def reset(self) -> None:
        self._scores.clear()
        self.state = AlertState.OFF

    @classmethod
    def from_config(cls, cfg, model_threshold: float) -> "AlertFilter":
        on = cfg.on_threshold or model_threshold
        off = cfg.off_threshold or 0.8 * on
        return cls(on, min(off, on), cfg.window, cfg.min_hits, cfg.min_misses)
