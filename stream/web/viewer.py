"""One browser connection's queue (``Viewer``) and the messages the hub hands it (``Outgoing``): a newest-only frame
slot, a state slot, and the count of frames the browser has not acknowledged."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass


@dataclass(frozen=True, eq=False)
class Outgoing:
    """One message for the browsers: a frame (binary: header + JPEG) or a state update (text)."""

    kind: str                  # "frame" | "state"
    header: dict
    jpeg: bytes = b""

    def binary(self, extra: dict) -> bytes:
        head = json.dumps({**self.header, **extra}, separators=(",", ":")).encode()
        return len(head).to_bytes(4, "big") + head + self.jpeg

    def text(self, extra: dict) -> str:
        return json.dumps({**self.header, **extra}, separators=(",", ":"))



class Viewer:
    """One browser connection's queue: a newest-only frame slot, a state slot, and the count of unacked frames."""

    def __init__(self, max_in_flight: int):
        self.max_in_flight = max_in_flight
        self.frame: Outgoing | None = None
        self.state: Outgoing | None = None
        self.in_flight = 0
        self.sent = self.dropped = self.acked = 0
        self.wake = asyncio.Event()

    def offer(self, msg: Outgoing) -> None:        # event-loop thread only
        if msg.kind == "frame":
            if self.frame is not None:
                self.dropped += 1
            self.frame = msg
        else:
            self.state = msg
        self.wake.set()

    def ack(self) -> None:
        self.acked += 1
        self.in_flight = max(0, self.in_flight - 1)
        self.wake.set()

    def take(self) -> Outgoing | None:
        """The next message to send now, or None (nothing, or only frames while too many are unacknowledged)."""
        if self.frame is not None and self.in_flight < self.max_in_flight:
            msg, self.frame = self.frame, None
            self.in_flight += 1
            self.sent += 1
            return msg
        if self.state is not None:
            msg, self.state = self.state, None
            return msg
        return None

    def counters(self) -> dict:
        return {"sent": self.sent, "dropped": self.dropped, "acked": self.acked}
