"""The procedure's frames in its record (``record.footage``, off by default), so that a finished procedure can be
reviewed and used for commissioning without a separate recording: JPEG frames at ``record.thumb_width`` in
``footage/`` with an index (``footage/footage.jsonl``), every frame inside alert episodes and within
``record.mark_seconds`` of a mark (before and after it), ``record.footage_fps`` frames a second elsewhere.

Off the hot path: the pipeline thread offers each frame to a queue of a few (a full queue drops the frame and counts
it, never waits). The writer thread scales each frame down and keeps the last ``mark_seconds`` of them in memory,
so that a mark made now still keeps the seconds before it; it watches ``marks.jsonl`` (appended by the overlay's key,
the browser's button and ``POST /api/mark``). Disk is charged to the record's ``record.max_mb`` like everything else.
"""
from __future__ import annotations

import collections
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engines.runtime.alerts import AlertState
from stream.detection import Detection
from stream.record_files import FOOTAGE
from stream.truth_files import MARKS

log = logging.getLogger(__name__)
QUEUE_FRAMES = 4
MAX_RING = 600                      # frames kept in memory for the seconds before a mark, whatever the rate


@dataclass
class _Kept:
    seq: int
    frame_index: int
    t_ns: int
    alert: bool
    score: float
    thumb: np.ndarray
    written: bool = False


class FootageWriter:
    def __init__(self, cfg, folder: Path, charge):
        """``charge(nbytes) -> bool``: the record's disk budget (False: full, nothing more is written)."""
        self.cfg, self.folder, self.charge = cfg, folder / FOOTAGE, charge
        self.marks_path = folder / MARKS
        self.window_ns = int(cfg.mark_seconds * 1e9)
        self.every_ns = int(1e9 / cfg.footage_fps)
        self.written = self.dropped = self.skipped = self.marks = 0
        self._ring: collections.deque[_Kept] = collections.deque(maxlen=MAX_RING)
        self._keep_until_ns = -1
        self._last_written_ns = None
        self._t0_ns: int | None = None
        self._marks_offset = 0
        self._index = None
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._loop, name="footage", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the pipeline thread (never waits)
    def offer(self, d: Detection, image: np.ndarray) -> None:
        try:
            self._queue.put_nowait((d, image))
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)
        if self._index is not None:
            self._index.close()

    def report(self) -> dict:
        return {"frames_written": self.written, "dropped": self.dropped, "skipped_disk_full": self.skipped,
                "marks": self.marks}

    # ------------------------------------------------------------------ the writer thread
    def _loop(self) -> None:
        next_poll = 0.0
        while True:
            try:
                item = self._queue.get(timeout=0.25)
            except queue.Empty:
                item = ()
            try:
                if item is None or time.monotonic() >= next_poll:      # marks: four times a second at most
                    self._read_marks()
                    next_poll = time.monotonic() + 0.25
                if item is None:
                    break
                if item:
                    self._take(*item)
            except OSError as e:                     # a full or unwritable disk: said once, never fatal
                log.error("footage: %s", e)
        self._read_marks()

    def _take(self, d: Detection, image: np.ndarray) -> None:
        if self._t0_ns is None:
            self._t0_ns = d.t_capture_ns
        h, w = image.shape[:2]
        scale = min(1.0, self.cfg.thumb_width / w)
        thumb = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) \
            if scale < 1 else image.copy()
        k = _Kept(d.seq, d.frame_index, d.t_capture_ns, d.alert is AlertState.ON, float(d.score), thumb)
        self._ring.append(k)
        while self._ring and k.t_ns - self._ring[0].t_ns > self.window_ns:
            self._ring.popleft()
        if k.alert:
            self._write(k, "episode")
        elif k.t_ns <= self._keep_until_ns:
            self._write(k, "mark")
        elif self._last_written_ns is None or k.t_ns - self._last_written_ns >= self.every_ns:
            self._write(k, "rate")

    def _read_marks(self) -> None:
        """New marks: every kept frame of the seconds before is written, and every frame of the seconds after."""
        try:
            with self.marks_path.open("rb") as f:
                f.seek(self._marks_offset)
                data = f.read()
        except OSError:
            return
        done = data.rfind(b"\n") + 1
        self._marks_offset += done
        for line in data[:done].splitlines():
            try:
                m = json.loads(line)
                t = int(m["t_capture_ns"])
            except (ValueError, KeyError, TypeError, RecursionError):
                continue
            self.marks += 1
            self._keep_until_ns = max(self._keep_until_ns, t + self.window_ns)
            for k in list(self._ring):
                if t - self.window_ns <= k.t_ns <= t + self.window_ns:
                    self._write(k, "mark")

    def _write(self, k: _Kept, why: str) -> None:
        if k.written:
            return
        ok, buf = cv2.imencode(".jpg", k.thumb, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return
        name = f"{k.seq:08d}.jpg"
        line = json.dumps({"seq": k.seq, "frame_index": k.frame_index, "t_s": round((k.t_ns - self._t0_ns) / 1e9, 3),
                           "file": name, "alert": k.alert, "score": round(k.score, 4), "why": why}) + "\n"
        if not self.charge(len(buf) + len(line)):
            self.skipped += 1
            return
        if self._index is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._index = (self.folder / "footage.jsonl").open("a")
        (self.folder / name).write_bytes(buf.tobytes())
        self._index.write(line)
        self._index.flush()
        k.written = True
        self._last_written_ns = k.t_ns if self._last_written_ns is None else max(self._last_written_ns, k.t_ns)
        self.written += 1
