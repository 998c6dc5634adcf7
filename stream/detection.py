"""The Detection: the one object that leaves the detector for the wire, the overlay and replay."""
from __future__ import annotations

from dataclasses import dataclass, field

from engines.runtime.alerts import AlertState  # noqa: F401  (part of the Detection type)
from engines.runtime.result import Box


STAGES = ("capture", "preprocess", "infer", "postprocess", "alert", "publish")


@dataclass(frozen=True)
class Detection:
    """Result for one processed frame.

    times_ns maps each stage name (see STAGES) to the ``time.monotonic_ns()`` at which it ended;
    ``times_ns["capture"]`` equals the frame's capture time.
    score is the raw frame polyp probability (0..1); ``alert`` is the temporally filtered state.
    """

    seq: int
    t_capture_ns: int
    source: str
    score: float
    alert: AlertState
    boxes: tuple[Box, ...] = ()
    model_id: str = ""
    times_ns: dict[str, int] = field(default_factory=dict)
    frame_index: int = -1
    error: str = ""

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0):
            raise ValueError(f"Detection.score: expected 0..1, got {self.score!r}")
        if not isinstance(self.alert, AlertState):
            object.__setattr__(self, "alert", AlertState(self.alert))
        for k in self.times_ns:
            if k not in STAGES:
                raise ValueError(f"Detection.times_ns: unknown stage {k!r}; expected one of {STAGES}")
        if self.frame_index < 0:
            object.__setattr__(self, "frame_index", self.seq)

    @classmethod
    def empty(cls, seq: int, t_capture_ns: int, source: str = "", model_id: str = "") -> "Detection":
        """A detection with no polyp and no alert (not "unknown": use ``failed`` for that)."""
        return cls(seq=seq, t_capture_ns=t_capture_ns, source=source, score=0.0, alert=AlertState.OFF,
                   model_id=model_id, times_ns={"capture": t_capture_ns})

    @classmethod
    def failed(cls, seq: int, t_capture_ns: int, source: str, error: str, model_id: str = "",
               times_ns: dict[str, int] | None = None, frame_index: int = -1) -> "Detection":
        """The engine raised on this frame: no decision, reported as such."""
        return cls(seq=seq, t_capture_ns=t_capture_ns, source=source, score=0.0, alert=AlertState.ERROR,
                   model_id=model_id, times_ns=dict(times_ns or {"capture": t_capture_ns}),
                   frame_index=frame_index, error=error)

    def latency_ns(self, stage: str = "publish") -> int | None:
        """Time from capture to the end of ``stage``, or None if the stage was not stamped."""
        t = self.times_ns.get(stage)
        return None if t is None else t - self.t_capture_ns
