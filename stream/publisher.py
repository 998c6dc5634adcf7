"""ZeroMQ PUB socket: sends never block the pipeline; messages a slow subscriber cannot take are dropped."""
from __future__ import annotations

import logging

import zmq

from engines.errors import ConfigError
from stream.detection import Detection
from stream.endpoints import check_endpoint
from stream.wire import FrameMessage, Status, encode_detection, encode_frame, encode_status

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, cfg, context: zmq.Context | None = None):
        check_endpoint("publisher.endpoint", cfg.endpoint, cfg.allow_non_loopback)
        self.cfg = cfg
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.PUB)
        self.curve = None
        if cfg.curve_secret_key:
            from stream.security import CurveServer
            self.curve = CurveServer(self.ctx, cfg.curve_secret_key, cfg.curve_allowed_clients)
            self.curve.apply(self.sock)
        self.sock.setsockopt(zmq.SNDHWM, cfg.sndhwm)
        self.sock.setsockopt(zmq.LINGER, 0)
        try:
            self.sock.bind(cfg.endpoint)
        except zmq.ZMQError as e:
            self.sock.close()
            raise ConfigError(f"publisher.endpoint: cannot bind {cfg.endpoint!r} ({e})") from None
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sent = 0
        self.dropped = 0

    def _send(self, parts: list, copy: bool = True) -> bool:
        try:
            self.sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=copy)
            self.sent += 1
            return True
        except zmq.Again:
            self.dropped += 1
            return False

    def detection(self, d: Detection) -> bool:
        return self._send(encode_detection(d))

    def status(self, s: Status) -> bool:
        return self._send(encode_status(s))

    def frame(self, f: FrameMessage) -> bool:
        return self._send(encode_frame(f, self.cfg.frame_encoding, self.cfg.jpeg_quality), copy=False)

    def close(self) -> None:
        self.sock.close(linger=0)
        if self.curve is not None:
            self.curve.stop()
