"""The overlay loop: newest frame in, state-checked drawing out; the video never waits for a detection."""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import Counter

import numpy as np

from stream.detection import Detection
from stream.latency import LatencyHistogram
from stream.overlay.draw import render
from stream.overlay.output import Output
from stream.overlay.receiver import Receiver
from stream.overlay.state import DetectorView
from stream.reader import LatestFrameReader
from stream.sources import make_source
from stream.wire import FrameMessage, Status

log = logging.getLogger(__name__)


class Overlay:
    def __init__(self, cfg):
        self.cfg = cfg
        self.frames_mode = cfg.video == "frames"
        self.view = DetectorView(cfg.max_age_ms, cfg.heartbeat_timeout_ms)
        self.receiver = Receiver(cfg.endpoint, frames=self.frames_mode,
                                 curve=(cfg.curve_secret_key, cfg.curve_server_key) if cfg.curve_secret_key else None)
        self.reader = None if self.frames_mode else LatestFrameReader(make_source(cfg.video), pace=True)
        self.stop_event = threading.Event()
        self.latencies = LatencyHistogram()        # constant memory over a long run
        self.displays: Counter[str] = Counter()
        self.drawn = self.redrawn = self.boxes_drawn = 0
        self.frames_received, self._first_status_ns, self.no_frames_warning = 0, 0, ""
        self.alert_frames = 0
        self._last_bell = 0.0
        self._alert_was_shown = False
        self._log = open(cfg.latency_log, "w") if cfg.latency_log else None
        self.on_draw = None        # optional callback(verdict, image, new) after each draw (tests, tools)
        self.output: Output | None = None
        self.record_dir = ""       # record.dir of the pipeline on this host: key m marks "polyp here" there
        self.marks: list[str] = []

    def mark(self, by: str = "overlay") -> str:
        """"Polyp here" at the newest detection, in the procedure being recorded (record.dir on this host): what
        became of it, also logged; never silently nothing."""
        from pathlib import Path

        from stream.truth_files import TruthError, append_mark
        from stream.web.procedures import NoSuchProcedure, procedure_folder
        s, d = self.view.status, self.view.detection
        try:
            if not self.record_dir or s is None or not s.procedure:
                raise TruthError("no procedure is being recorded here (record.dir, and a running pipeline)")
            if d is None:
                raise TruthError("no detection has arrived yet")
            e = append_mark(procedure_folder(Path(self.record_dir), s.procedure), by, d.seq, d.frame_index,
                            d.t_capture_ns)
            said = f"mark {e['mark']} kept at frame {e['frame_index']} of {s.procedure}"
        except (TruthError, NoSuchProcedure, OSError) as e:
            said = f"mark not kept: {e}"
        log.warning("%s", said) if said.startswith("mark not") else log.info("%s", said)
        self.marks.append(said)
        return said

    def _bell(self) -> None:
        now = time.monotonic()
        if self.cfg.bell and now - self._last_bell >= self.cfg.bell_min_interval_s:
            sys.stderr.write("\a")
            sys.stderr.flush()
            self._last_bell = now

    def caption(self) -> str:
        """'model <id>', and the site of a site model, from the latest heartbeat ('' before one arrives)."""
        s = self.view.status
        if s is None or not s.model_id:
            return ""
        return f"model {s.model_id}" + (f" | site {s.site}" if s.site else "")

    def _draw(self, frame: FrameMessage, out: Output, new: bool, record: bool = True) -> None:
        img = frame.image.copy()
        now = time.monotonic_ns()
        verdict = self.view.verdict(frame.t_capture_ns, now)
        latency_ms = (now - frame.t_capture_ns) / 1e6 if new else None
        n, shown = render(img, verdict, self.cfg, latency_ms, self.caption())
        t_draw = time.monotonic_ns()
        out.show(img, record)
        if out.key in (ord("m"), ord("M")):
            self.mark()
        if self.on_draw is not None:
            self.on_draw(verdict, img, new)
        if shown and not self._alert_was_shown:
            self._bell()
        self._alert_was_shown = shown
        if not new:
            self.redrawn += 1
            return
        self.drawn += 1
        self.boxes_drawn += n
        self.alert_frames += int(shown)
        self.displays[verdict.display.value] += 1
        self.latencies.add(t_draw - frame.t_capture_ns)
        if self._log is not None:
            d = verdict.detection
            self._log.write(json.dumps({
                "seq": frame.seq, "frame_index": frame.frame_index, "t_capture_ns": frame.t_capture_ns,
                "t_draw_ns": t_draw, "capture_to_draw_ms": round((t_draw - frame.t_capture_ns) / 1e6, 3),
                "display": verdict.display.value, "boxes_drawn": n, "alert_shown": shown,
                "detection_seq": d.seq if d else None,
                "detection_age_ms": None if verdict.age_ms is None else round(verdict.age_ms, 3)}) + "\n")

    def run(self) -> dict:
        cfg = self.cfg
        out = self.output = Output(cfg)
        redraw_ns = int(cfg.redraw_ms * 1e6)
        t_end = time.monotonic_ns() + int(cfg.max_seconds * 1e9) if cfg.max_seconds else None
        last: FrameMessage | None = None
        last_draw = 0
        placeholder = None
        if self.reader is not None:
            self.reader.start()
            out.source_fps = self.reader.source.fps
        try:
            while not self.stop_event.is_set():
                pending = None
                for msg in self.receiver.poll(timeout_ms=2 if self.reader is not None else 5):
                    now = time.monotonic_ns()
                    if isinstance(msg, Status):
                        self.view.on_status(msg, now)
                        out.source_fps = out.source_fps or msg.source_fps
                        self._first_status_ns = self._first_status_ns or now
                    elif isinstance(msg, Detection):
                        self.view.on_detection(msg, now)
                    elif isinstance(msg, FrameMessage):
                        pending = msg                      # keep only the newest frame
                        self.frames_received += 1
                if self.reader is not None:
                    f = self.reader.get(timeout=0.0)
                    if f is not None:
                        pending = FrameMessage(f.seq, f.t_capture_ns, f.source, f.image, f.index)
                    elif self.reader.ended:
                        break
                now = time.monotonic_ns()
                self._say_if_no_frames(now)
                if pending is not None:
                    self._draw(pending, out, new=True)
                    last, last_draw = pending, now
                elif now - last_draw >= redraw_ns:
                    if last is None:          # no video yet: still say what the detector is doing
                        placeholder = placeholder or FrameMessage(0, now, "", np.zeros((360, 640, 3), np.uint8))
                        self._draw(placeholder, out, new=False, record=False)   # screen only, not the file
                    else:
                        self._draw(last, out, new=False)
                    last_draw = now
                if cfg.max_frames and self.drawn >= cfg.max_frames:
                    break
                if t_end is not None and now >= t_end:
                    break
        finally:
            out.close()
            self.receiver.close()
            if self.reader is not None:
                self.reader.stop()
            if self._log is not None:
                self._log.close()
        return self.summary()

    NO_FRAMES_AFTER_S = 3.0

    def _say_if_no_frames(self, now: int) -> None:
        """Heartbeats but no frame for a while, drawing on the frames topic: the pipeline is not publishing frames
        (publisher.send_frames: false). Said once in the log and in the summary, never silently nothing."""
        if (self.no_frames_warning or self.reader is not None or self.frames_received or not self._first_status_ns
                or now - self._first_status_ns < self.NO_FRAMES_AFTER_S * 1e9):
            return
        self.no_frames_warning = (
            f"the pipeline sends heartbeats but no frames ({self.NO_FRAMES_AFTER_S:g} s): it publishes frames only with "
            f"publisher.send_frames: true (polypwatch run --set publisher.send_frames=true), or give the overlay its "
            f"own capture of the feed (overlay.video)" + ("; nothing is written to overlay.output until then"
                                                         if self.cfg.output else ""))
        log.warning("%s", self.no_frames_warning)

    def summary(self) -> dict:
        return {"frames_drawn": self.drawn, "frames_received": self.frames_received,
                "warning": self.no_frames_warning, "marks": list(self.marks), "redraws": self.redrawn, "boxes_drawn": self.boxes_drawn,
                "alert_frames": self.alert_frames, "displays": dict(self.displays),
                "messages": self.receiver.received, "malformed": dict(self.receiver.malformed),
                "reconnects": self.receiver.reconnects,
                "output_fps": (self.cfg.output_fps or self.output.source_fps) if self.output else None,
                "output_unrecorded_frames": self.output.unrecorded if self.output else 0,
                "capture_to_draw_ms": self.latencies.percentiles_ms()}


def format_summary(s: dict) -> str:
    p = s["capture_to_draw_ms"]
    lat = (f"capture -> draw (ms): p50 {p['p50']:.2f}  p95 {p['p95']:.2f}  p99 {p['p99']:.2f}  max {p['max']:.2f}"
           if p["count"] else "capture -> draw: no frame drawn")
    return (f"frames drawn {s['frames_drawn']} (+{s['redraws']} redraws), boxes {s['boxes_drawn']}, alert frames "
            f"{s['alert_frames']}, states {s['displays']}, messages {s['messages']}, malformed {s['malformed']}\n{lat}"
            + (f"\nWARNING: {s['warning']}" if s.get("warning") else ""))
