"""The ``overlay:`` configuration section."""
from __future__ import annotations

from dataclasses import dataclass

from stream.config import register_section


@dataclass(frozen=True)
class OverlayConfig:
    endpoint: str = "tcp://127.0.0.1:5560"    # the pipeline's publisher
    video: str = "frames"                      # "frames": the pipeline's frames topic; else a capture source
    show_window: bool = False                  # an OpenCV window (needs opencv-python with GUI support)
    fullscreen: bool = False
    window_name: str = "polypwatch"
    output: str = ""                           # write the annotated video to this file ("" = none)
    output_fps: float = 0.0                    # 0 = the source's own frame rate (from the pipeline's heartbeat)
    max_age_ms: float = 100.0                  # a detection is drawn only on frames at most this much newer
    heartbeat_timeout_ms: float = 500.0        # no heartbeat for this long: OFFLINE
    redraw_ms: float = 100.0                   # with no new frame, redraw the last one this often (state changes)
    alert_style: str = "border"                # border | corners
    alert_color: tuple[int, ...] = (0, 215, 255)   # BGR
    box_color: tuple[int, ...] = (0, 255, 0)
    box_thickness: int = 3
    show_latency: bool = True
    latency_log: str = ""                      # JSON lines, one per drawn frame ("" = none)
    bell: bool = False                         # audible cue when an alert starts
    bell_min_interval_s: float = 3.0
    curve_secret_key: str = ""                 # CURVE: this client's NAME.key_secret ("" = plain)
    curve_server_key: str = ""                 # CURVE: the pipeline's public NAME.key
    max_frames: int = 0                        # stop after drawing this many frames (0 = no limit)
    max_seconds: float = 0.0

    _ranges = {"output_fps": (0, 240), "max_age_ms": (1, 10000), "heartbeat_timeout_ms": (10, 60000),
               "redraw_ms": (5, 10000), "box_thickness": (1, 20), "bell_min_interval_s": (0.1, 3600),
               "max_frames": (0, 10**9), "max_seconds": (0, 10**7)}
    _choices = {"alert_style": ("border", "corners")}

    def validate(self) -> None:
        from engines.errors import ConfigError
        for key in ("alert_color", "box_color"):
            v = getattr(self, key)
            if len(v) != 3 or not all(0 <= c <= 255 for c in v):
                raise ConfigError(f"overlay.{key}: expected [B, G, R] with values 0..255, got {list(v)}")
        from stream.endpoints import check_endpoint
        check_endpoint("overlay.endpoint", self.endpoint, allow_non_loopback=True)
        from stream.config import check_output_path
        check_output_path("overlay.output", self.output)
        check_output_path("overlay.latency_log", self.latency_log)
        if bool(self.curve_secret_key) != bool(self.curve_server_key):
            raise ConfigError("overlay.curve_server_key: expected both curve_secret_key and curve_server_key "
                              "(or neither), got only one")


register_section("overlay", OverlayConfig)
