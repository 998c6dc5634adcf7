"""The ``web:`` configuration section. Drawing rules (staleness, heartbeat timeout, colours) come from ``overlay:``
so that the browser shows exactly what the overlay renderer would."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engines.errors import ConfigError
import stream.overlay.config  # noqa: F401  (the page follows the overlay: section's drawing rules)
from stream.config import register_section
from stream.endpoints import is_loopback_host, parse_listen

MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class WebConfig:
    listen: str = "127.0.0.1:8080"          # HTTP address; anything but loopback needs an access token
    endpoint: str = "tcp://127.0.0.1:5560"  # the pipeline's publisher
    token: str = ""                         # access token (>= 16 characters); required off loopback
    token_file: str = ""                    # or: a file holding the token (kept out of configs and shell history)
    curve_secret_key: str = ""              # CURVE: this client's NAME.key_secret ("" = plain)
    curve_server_key: str = ""              # CURVE: the pipeline's public NAME.key
    max_width: int = 1280                   # raw frames wider than this are scaled down before JPEG
    jpeg_quality: int = 80                  # for frames that arrive raw (JPEG frames are passed on as they came)
    max_in_flight: int = 2                  # frames sent to a viewer and not yet drawn by it; newer ones replace
    state_interval_ms: float = 100.0        # with no new frame, the state is sent this often
    max_viewers: int = 32
    uploads: bool = True                    # the check page (model runs in this process, one upload at a time)
    max_upload_mb: float = 32.0
    max_clip_frames: int = 900              # frames of an uploaded clip that are checked (30 s at 30 fps)
    max_clip_seconds: float = 60.0          # longer clips are refused
    reports_dir: str = ""                   # folder of `polypwatch replay` outputs to browse ("" = none)

    _ranges = {"max_width": (160, 7680), "jpeg_quality": (10, 100), "max_in_flight": (1, 16),
               "state_interval_ms": (10, 5000), "max_viewers": (1, 1000), "max_upload_mb": (0.1, 1024),
               "max_clip_frames": (1, 100000), "max_clip_seconds": (0.1, 36000)}

    def validate(self) -> None:
        from stream.config import check_path_value
        for key in ("token_file", "reports_dir", "curve_secret_key", "curve_server_key"):
            check_path_value(f"web.{key}", getattr(self, key))
        host, _ = parse_listen("web.listen", self.listen)
        from stream.endpoints import check_endpoint
        check_endpoint("web.endpoint", self.endpoint, allow_non_loopback=True)
        if self.token and self.token_file:
            raise ConfigError("web.token_file: expected web.token or web.token_file, not both")
        if self.token_file and not Path(self.token_file).is_file():
            raise ConfigError(f"web.token_file: file {self.token_file!r} not found")
        token = self.access_token()
        if token and (len(token) < MIN_TOKEN_CHARS or token != token.strip()):
            raise ConfigError(f"web.token: expected at least {MIN_TOKEN_CHARS} characters without surrounding "
                              f"spaces (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe())'), "
                              f"got {len(token)} characters")
        if not token and not is_loopback_host(host):
            raise ConfigError(f"web.token: expected an access token when web.listen ({self.listen}) is not a "
                              f"loopback address, got none (set web.token_file or POLYPWATCH_WEB_TOKEN)")
        if self.reports_dir and not Path(self.reports_dir).is_dir():
            raise ConfigError(f"web.reports_dir: folder {self.reports_dir!r} not found")
        if bool(self.curve_secret_key) != bool(self.curve_server_key):
            raise ConfigError("web.curve_server_key: expected both curve_secret_key and curve_server_key "
                              "(or neither), got only one")

    def access_token(self) -> str:
        """The configured token: web.token, else web.token_file's first line, else $POLYPWATCH_WEB_TOKEN."""
        if self.token:
            return self.token
        if self.token_file:
            lines = Path(self.token_file).read_text().splitlines()
            return lines[0] if lines else ""
        return os.environ.get("POLYPWATCH_WEB_TOKEN", "")


register_section("web", WebConfig)
