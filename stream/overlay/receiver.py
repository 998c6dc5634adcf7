"""The overlay's SUB socket: receives, decodes, and counts (never raises on) whatever arrives."""
from __future__ import annotations

import logging
import time
from collections import Counter

import zmq

from engines.errors import WireError
from stream.wire import MAX_PAYLOAD_BYTES, TOPIC_DETECTION, TOPIC_FRAME, TOPIC_STATUS, decode

log = logging.getLogger(__name__)


class Receiver:
    """``poll()`` returns decoded messages; after ``silence_s`` without any message the socket is re-created
    (libzmq does not reconnect a publisher it dropped for an oversized message)."""

    def __init__(self, endpoint: str, frames: bool, context: zmq.Context | None = None, silence_s: float = 1.0,
                 curve: tuple[str, str] | None = None, frame_pixels: bool = True, section: str = "overlay"):
        self.curve, self.section = curve, section
        self.frame_pixels = frame_pixels      # False: frames come back as wire.FrameHeader, payload undecoded
        self.ctx = context or zmq.Context.instance()
        self.endpoint, self.frames, self.silence_ns = endpoint, frames, int(silence_s * 1e9)
        self.received = 0
        self.reconnects = 0
        self.malformed: Counter[str] = Counter()
        self._open()

    def _open(self) -> None:
        self.t_last_ns = time.monotonic_ns()
        self.sock = self.ctx.socket(zmq.SUB)
        if self.curve:
            from stream.security import apply_client
            apply_client(self.sock, self.curve[0], self.curve[1], self.section)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_PAYLOAD_BYTES + 70_000)  # larger messages are dropped by ZeroMQ
        self.sock.setsockopt(zmq.RCVHWM, 50)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RECONNECT_IVL, 100)          # pipeline restarts: reconnect quickly
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        for topic in (TOPIC_DETECTION, TOPIC_STATUS) + ((TOPIC_FRAME,) if self.frames else ()):
            self.sock.setsockopt(zmq.SUBSCRIBE, topic)
        self.sock.connect(self.endpoint)

    def poll(self, timeout_ms: int, max_messages: int = 200) -> list:
        """Decoded messages that arrived within ``timeout_ms`` (then everything pending, up to a limit)."""
        out = []
        if not self.sock.poll(timeout_ms):
            if time.monotonic_ns() - self.t_last_ns > self.silence_ns:
                self.sock.close(0)
                self.reconnects += 1
                self._open()
            return out
        self.t_last_ns = time.monotonic_ns()
        while len(out) < max_messages:
            try:
                parts = self.sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.received += 1
            try:
                out.append(decode(parts, self.frame_pixels))
            except WireError as e:
                kind = str(e).split(":")[0]
                if self.malformed[kind] == 0:
                    log.warning("ignoring malformed message (%s); further ones of this kind are only counted", e)
                self.malformed[kind] += 1
        return out

    def close(self) -> None:
        self.sock.close(0)
