"""What the overlay knows about the detector, and what the screen must say. Pure logic: times are passed in."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from stream.detection import AlertState, Detection
from stream.wire import Status


class Display(str, Enum):
    ACTIVE = "ACTIVE"          # heartbeat fresh, detector running, detection fresh for this frame
    STALE = "STALE"            # heartbeat fresh but no detection recent enough for this frame
    NO_SIGNAL = "NO SIGNAL"    # the pipeline reports its source lost
    OFFLINE = "OFFLINE"        # no heartbeat within the timeout, or the pipeline stopped


@dataclass(frozen=True)
class Verdict:
    display: Display
    detection: Detection | None     # the detection to draw on this frame (None: draw none)
    age_ms: float | None            # detection age relative to the frame


class DetectorView:
    """Latest heartbeat and detection; decides, per frame, what may be drawn."""

    def __init__(self, max_age_ms: float, heartbeat_timeout_ms: float):
        self.max_age_ns = int(max_age_ms * 1e6)
        self.timeout_ns = int(heartbeat_timeout_ms * 1e6)
        self.status: Status | None = None
        self.t_status_rx_ns = 0
        self.detection: Detection | None = None

    def on_status(self, s: Status, now_ns: int) -> None:
        self.status = s
        self.t_status_rx_ns = now_ns

    def on_detection(self, d: Detection, now_ns: int) -> None:
        # newest by capture time (seq restarts at 0 when the pipeline restarts; the monotonic clock does not)
        if self.detection is None or d.t_capture_ns >= self.detection.t_capture_ns:
            self.detection = d

    def verdict(self, frame_t_capture_ns: int, now_ns: int) -> Verdict:
        if self.status is None or now_ns - self.t_status_rx_ns > self.timeout_ns or self.status.state in ("stopped", "error"):
            return Verdict(Display.OFFLINE, None, None)
        if self.status.state == "no_signal":
            return Verdict(Display.NO_SIGNAL, None, None)
        d = self.detection
        if d is None:
            return Verdict(Display.STALE, None, None)
        age = frame_t_capture_ns - d.t_capture_ns
        # a detection belongs to this frame or to one at most max_age older; never draw one from the future
        if age < -self.max_age_ns or age > self.max_age_ns or d.alert is AlertState.ERROR:
            return Verdict(Display.STALE, None, age / 1e6)
        return Verdict(Display.ACTIVE, d, age / 1e6)
