"""The alert shown to the endoscopist and the temporal filter that decides it: persistence (k of the last n frames)
and hysteresis (a lower off-threshold), with its configuration section (``alerts:``). Defined here, below both rooms:
the live pipeline runs it on every frame, and the lab chooses the operating point with the very same filter."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum


class AlertState(str, Enum):
    """Filtered alert shown to the endoscopist (never the raw score)."""

    OFF = "off"
    ON = "on"
    ERROR = "error"  # the engine failed on this frame: no decision was made


@dataclass(frozen=True)
class AlertsConfig:
    on_threshold: float = 0.0             # 0 = the model's recommended threshold
    off_threshold: float = 0.0            # 0 = 0.8 x on_threshold (hysteresis)
    window: int = 5                       # n: frames considered
    min_hits: int = 3                     # k: frames over on_threshold among the last n to raise the alert
    min_misses: int = 4                   # frames under off_threshold among the last n to drop it

    _ranges = {"on_threshold": (0.0, 0.999), "off_threshold": (0.0, 0.999), "window": (1, 1000),
               "min_hits": (1, 1000), "min_misses": (1, 1000)}


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
