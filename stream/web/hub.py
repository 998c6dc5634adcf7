"""From the pipeline's ZeroMQ stream to every browser: one receiver thread, one JPEG per frame, newest only.

The receiver thread drains the SUB socket, keeps the newest frame, decides what may be drawn on it with the
overlay's own rules (``DetectorView``: never a stale box, OFFLINE when heartbeats stop) and hands one prepared
message to every viewer. Each viewer holds one frame slot: a frame it has not taken yet is replaced by the newer
one and counted as dropped for that viewer. A viewer gets at most ``max_in_flight`` frames it has not
acknowledged (drawn), so a stalled browser stops receiving frames; it never slows the pipeline or other viewers.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import cv2
import numpy as np

from stream.detection import AlertState, Detection
from stream.endpoints import is_loopback_endpoint
from stream.overlay.receiver import Receiver
from stream.overlay.state import DetectorView, Verdict
from stream.wire import FrameHeader, Status
from stream.web.viewer import Outgoing, Viewer

log = logging.getLogger(__name__)


def _rgb(bgr) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


def verdict_json(v: Verdict) -> dict:
    """What the page draws: boxes and the alert border only for a fresh detection whose filtered alert is on
    (the overlay's ``draw_boxes``/``draw_alert`` rules), the state always."""
    d = v.detection
    shown = d is not None and d.alert is AlertState.ON
    return {"display": v.display.value, "alert_shown": shown,
            "boxes": [[round(x, 5) for x in b.to_list()] for b in d.boxes] if shown else [],
            "score": round(d.score, 4) if d is not None else None, "det_seq": d.seq if d is not None else None,
            "det_age_ms": None if v.age_ms is None else round(v.age_ms, 2)}


def status_json(s: Status | None) -> dict:
    if s is None:
        return {"state": None}
    lat = s.latency_ms.get("capture_to_publish", {}) if isinstance(s.latency_ms, dict) else {}
    c2p = {k: lat.get(k) for k in ("p50", "p99", "max") if k in lat}
    return {"state": s.state, "model_id": s.model_id, "site": s.site, "backend": s.backend, "source": s.source,
            "fps": s.fps, "processed": s.processed, "dropped": s.dropped, "budget_ms": s.budget_ms, "record": s.record,
            "budget_misses": s.budget_misses, "errors": s.errors, "message": s.message, "procedure": s.procedure,
            "capture_to_publish_ms": c2p}


class Hub:
    """Owns the receiver thread and the set of viewers; ``attach(loop)`` before ``start()``."""

    def __init__(self, web, overlay):
        self.web, self.overlay = web, overlay
        self.view = DetectorView(overlay.max_age_ms, overlay.heartbeat_timeout_ms)
        self.same_host = is_loopback_endpoint(web.endpoint)   # monotonic clocks comparable: ages are meaningful
        self.viewers: set[Viewer] = set()
        self.latest: Outgoing | None = None       # the newest frame message (for /api/snapshot.jpg)
        self.last_state: dict = {}
        self.frames_in = self.frames_skipped = self.encoded = 0
        self.stop_event = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._receiver: Receiver | None = None
        self._last_frame: FrameHeader | None = None
        self._last_det: Detection | None = None
        self.hub_errors: dict[str, int] = {}
        self._last_sent = 0                         # monotonic ns of the last message handed to the viewers

    def style(self) -> dict:
        o = self.overlay
        return {"box_color": _rgb(o.box_color), "alert_color": _rgb(o.alert_color), "alert_style": o.alert_style,
                "box_thickness": o.box_thickness, "max_age_ms": o.max_age_ms, "same_host": self.same_host,
                "heartbeat_timeout_ms": o.heartbeat_timeout_ms, "sound_min_interval_s": o.bell_min_interval_s}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        w = self.web
        self._receiver = Receiver(w.endpoint, frames=True, frame_pixels=False, section="web",
                                  curve=(w.curve_secret_key, w.curve_server_key) if w.curve_secret_key else None)
        self._thread = threading.Thread(target=self._run, name="web-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._receiver is not None:
            self._receiver.close()

    def latest_detection(self) -> Detection | None:
        """The newest detection received (a mark belongs to its frame)."""
        return self._last_det

    def counters(self) -> dict:
        r = self._receiver
        return {"frames_in": self.frames_in, "frames_skipped": self.frames_skipped, "encoded": self.encoded,
                "messages": r.received if r else 0, "malformed": dict(r.malformed) if r else {},
                "reconnects": r.reconnects if r else 0, "viewers": len(self.viewers), "hub_errors": dict(self.hub_errors)}

    # ------------------------------------------------------------------ receiver thread
    def _run(self) -> None:
        """Never dies of a message: whatever one step raises is logged once per kind and counted (``hub_errors``)."""
        interval_ns = int(self.web.state_interval_ms * 1e6)
        while not self.stop_event.is_set():
            try:
                self._step(interval_ns)
            except Exception as e:  # noqa: BLE001 - the thread that feeds every browser must outlive any message
                kind = type(e).__name__
                if not self.hub_errors.get(kind):
                    log.exception("web hub: a step failed (%s); the hub goes on, further ones are only counted", kind)
                self.hub_errors[kind] = self.hub_errors.get(kind, 0) + 1
                time.sleep(0.01)

    def _step(self, interval_ns: int) -> None:
        newest: FrameHeader | None = None
        for msg in self._receiver.poll(timeout_ms=10):
            now = time.monotonic_ns()
            if isinstance(msg, Status):
                self.view.on_status(msg, now)
            elif isinstance(msg, Detection):
                self.view.on_detection(msg, now)
                self._last_det = msg
            elif isinstance(msg, FrameHeader):
                self.frames_in += 1
                if newest is not None:
                    self.frames_skipped += 1       # two frames in one drain: only the newest is shown
                newest = msg
        now = time.monotonic_ns()
        if newest is not None:
            try:
                out = self._frame_message(newest, now)
            except ValueError as e:
                log.warning("frame %d not shown: %s", newest.seq, e)
                return
            self._last_frame = newest
            self.latest = out
            self._publish(out)
            self._last_sent = now
        elif now - self._last_sent >= interval_ns:
            self._publish(self._state_message(now))
            self._last_sent = now

    def _publish(self, msg: Outgoing) -> None:
        self.last_state = msg.header
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._fan_out, msg)
            except RuntimeError:       # the loop closed between the check and the call
                pass

    def _fan_out(self, msg: Outgoing) -> None:
        for v in self.viewers:
            v.offer(msg)

    def _jpeg(self, f: FrameHeader) -> tuple[bytes, int, int]:
        h, w = f.shape[:2]
        if f.encoding == "jpeg" and w <= self.web.max_width:
            return bytes(f.payload), w, h                      # passed on as the pipeline encoded it
        if f.encoding == "raw":
            img = np.frombuffer(f.payload, np.uint8).reshape(f.shape)
        else:
            img = cv2.imdecode(np.frombuffer(f.payload, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError("JPEG payload does not decode")
        if w > self.web.max_width:
            h, w = round(h * self.web.max_width / w), self.web.max_width
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.web.jpeg_quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        self.encoded += 1
        return buf.tobytes(), w, h

    def _common(self, now: int, t_capture_ns: int | None) -> dict:
        s = self.view.status
        status = status_json(s)
        status["heartbeat_age_ms"] = round((now - self.view.t_status_rx_ns) / 1e6, 1) if s is not None else None
        return {"status": status, "server": self.counters(),
                "age_at_send_ms": round((now - t_capture_ns) / 1e6, 2)
                if (t_capture_ns is not None and self.same_host) else None, "t_send_ms": now / 1e6}

    def _frame_message(self, f: FrameHeader, now: int) -> Outgoing:
        jpeg, w, h = self._jpeg(f)
        v = self.view.verdict(f.t_capture_ns, now)
        d = self._last_det
        c2p = None
        if d is not None and d.seq == f.seq and d.t_capture_ns == f.t_capture_ns:
            t = d.latency_ns("publish")
            c2p = None if t is None else round(t / 1e6, 2)
        header = {"type": "frame", "seq": f.seq, "frame_index": f.frame_index, "source": f.source, "width": w,
                  "height": h, "verdict": verdict_json(v), "capture_to_publish_ms": c2p,
                  **self._common(time.monotonic_ns(), f.t_capture_ns)}
        return Outgoing("frame", header, jpeg)

    def _state_message(self, now: int) -> Outgoing:
        f = self._last_frame
        v = self.view.verdict(f.t_capture_ns if f is not None else now, now)
        header = {"type": "state", "seq": f.seq if f is not None else None, "verdict": verdict_json(v),
                  **self._common(now, f.t_capture_ns if f is not None else None)}
        return Outgoing("state", header)
