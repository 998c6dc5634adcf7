"""Arguments of a synthetic clip: everything that determines its pixels."""
from __future__ import annotations

from dataclasses import dataclass

FPS_CHOICES = (25, 30, 50, 60)


@dataclass(frozen=True)
class SynthParams:
    seed: int = 1
    seconds: float = 10.0
    width: int = 640
    height: int = 480
    fps: int = 30
    polyps: bool = True      # False renders the same scene with no polyp (used to check masks against pixels)

    def __post_init__(self) -> None:
        if self.fps not in FPS_CHOICES:
            raise ValueError(f"fps: expected one of {FPS_CHOICES}, got {self.fps!r}")
        if not (160 <= self.width <= 1920 and 120 <= self.height <= 1080):
            raise ValueError(f"size: expected between 160x120 and 1920x1080, got {self.width}x{self.height}")
        if not (0.1 <= self.seconds <= 3600):
            raise ValueError(f"seconds: expected 0.1..3600, got {self.seconds!r}")
        if self.seed < 0:
            raise ValueError(f"seed: expected >= 0, got {self.seed!r}")

    @property
    def frame_count(self) -> int:
        return max(1, int(round(self.seconds * self.fps)))


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' -> (1920, 1080)."""
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise ValueError(f"size: expected WIDTHxHEIGHT such as 1920x1080, got {text!r}") from None
