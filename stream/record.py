"""The procedure record (``record.dir``, off by default): per run a folder with the detection log, one gallery entry
per alert episode (the frame at the episode's peak score with its boxes, start, end, duration, peak score) and the
run summary, so that the endoscopist can see afterwards what the detector flagged.

Written off the hot path: the pipeline thread only hands detections over (a bounded queue; when it is full the item
is dropped and counted, never waited for) and keeps a reference to the episode's peak frame; a writer thread encodes
and writes. A full or unwritable disk is reported (``error``, in the heartbeat and the summary) and never stops the
live video. The oldest procedures are removed when the folder grows past ``record.max_mb``: at the start and whenever
this run's writing takes it past the limit. When this procedure alone is over the limit its record stops (said as
``error``; the summary is still written) rather than removing what it has recorded.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engines.runtime.alerts import AlertState
from stream.detection import Detection
from stream.record_files import MARKER, prune, records_bytes
from stream.wire import encode_detection

log = logging.getLogger(__name__)
QUEUE_ITEMS = 512


@dataclass
class _Episode:
    first: Detection
    last: Detection
    peak: Detection
    image: np.ndarray                  # the frame at the peak score (a reference: frames are never changed)
    frames: int = 1


@dataclass
class RecordStats:
    episodes: int = 0
    written: int = 0
    dropped: int = 0                   # items the writer could not take in time (queue full)
    pruned: list = field(default_factory=list)
    skipped: int = 0                   # items not written because this procedure alone reached record.max_mb


class ProcedureRecord:
    def __init__(self, cfg, source_id: str, model_id: str, source_fps: float = 0.0):
        self.cfg = cfg
        self.root = Path(cfg.dir)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source_id)[:40] or "source"
        self.folder = self.root / f"{stamp}-{safe}"
        self.stats = RecordStats()
        self.error = ""
        self._episode: _Episode | None = None
        self._t0_ns: int | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_ITEMS)
        self._thread = threading.Thread(target=self._write_loop, name="record", daemon=True)
        self._log = None
        self._max_bytes = int(cfg.max_mb * 1e6)
        self._root_bytes = 0               # the writer's running estimate of the folder's size
        self._full = False
        self._budget = threading.Lock()    # the record's writer and the footage writer share record.max_mb
        self.footage = None
        if cfg.footage:
            from stream.footage import FootageWriter
            self.footage = FootageWriter(cfg, self.folder, self.charge)
        self._queue.put(("start", {"source": source_id, "model_id": model_id, "source_fps": round(source_fps, 3),
                                   "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        self._thread.start()

    # ------------------------------------------------------------------ the pipeline thread (cheap, never waits)
    def on_detection(self, d: Detection, image: np.ndarray) -> None:
        if self._t0_ns is None:
            self._t0_ns = d.t_capture_ns
        self._put(("det", d))
        if self.footage is not None:
            self.footage.offer(d, image)
        ep = self._episode
        if d.alert is AlertState.ON:
            if ep is None:
                self._episode = _Episode(d, d, d, image)
            else:
                ep.last, ep.frames = d, ep.frames + 1
                if d.score > ep.peak.score:
                    ep.peak, ep.image = d, image
        elif ep is not None:
            self._end_episode()

    def _end_episode(self) -> None:
        ep, self._episode = self._episode, None
        self.stats.episodes += 1
        self._put(("episode", (self.stats.episodes, ep, self._t0_ns)))

    def _put(self, item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.stats.dropped += 1

    def close(self, summary: dict) -> dict:
        """End the episode in flight, write the summary, stop the writer; returns what the record did."""
        if self._episode is not None:
            self._end_episode()
        if self.footage is not None:
            self.footage.close()
        self._queue.put(("summary", summary))
        self._queue.put(None)
        self._thread.join(30)
        return self.report()

    def report(self) -> dict:
        return {"folder": str(self.folder), "episodes": self.stats.episodes, "written": self.stats.written,
                "dropped": self.stats.dropped, "skipped": self.stats.skipped, "pruned": self.stats.pruned,
                "error": self.error, "footage": self.footage.report() if self.footage is not None else None}

    def charge(self, nbytes: int) -> bool:
        """Room for ``nbytes`` more of this procedure (the footage writer's thread): False once it is full."""
        with self._budget:
            if not self._room_for(1):
                return False
            self._root_bytes += nbytes
            return True

    # ------------------------------------------------------------------ the writer thread
    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            try:
                with self._budget:
                    self._write(*item)
                self.stats.written += 1
            except OSError as e:                       # full or unwritable disk: said, never fatal
                if not self.error:
                    log.error("procedure record: %s", e)
                self.error = f"{type(e).__name__}: {e.strerror or e}"
        if self._log is not None:
            try:
                self._log.close()
            except OSError:
                pass

    def _write(self, kind: str, payload) -> None:
        if kind == "start":
            self.root.mkdir(parents=True, exist_ok=True)
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / MARKER).write_text("written by polypwatch run (record.dir); pruning removes only its own "
                                              "files\n")
            (self.folder / "procedure.json").write_text(json.dumps(payload, indent=1))
            self._log = (self.folder / "detections.jsonl").open("w")
            self._make_room()
        elif kind == "det":
            if self._log is None:
                raise OSError(f"{self.folder}: the record could not be started")
            if self._room_for(1):
                line = encode_detection(payload)[1].decode() + "\n"
                self._log.write(line)
                self._root_bytes += len(line)
        elif kind == "episode":
            if self._room_for(1):
                self._write_episode(*payload)
        elif kind == "summary":
            if self._log is not None:
                self._log.flush()
            (self.folder / "summary.json").write_text(json.dumps({**payload, "record": self.report()}, indent=1))

    def _make_room(self) -> None:
        """Prune the oldest procedures; then measure the folder again."""
        if self._log is not None:
            self._log.flush()                          # what is written counts
        self.stats.pruned += prune(self.root, self._max_bytes, self.folder)
        self._root_bytes = records_bytes(self.root)

    def _room_for(self, items: int) -> bool:
        """False once this procedure alone has reached record.max_mb (its record stops; nothing else is removed)."""
        if self._full:
            self.stats.skipped += items
            return False
        if self._root_bytes > self._max_bytes:
            self._make_room()
            if self._root_bytes > self._max_bytes:
                self._full = True
                self.error = f"record.max_mb ({self.cfg.max_mb:g} MB) reached by this procedure alone: its record stops here"
                log.error("procedure record: %s", self.error)
                self.stats.skipped += items
                return False
        return True

    def _write_episode(self, n: int, ep: _Episode, t0_ns: int) -> None:
        img = ep.image
        h, w = img.shape[:2]
        scale = min(1.0, self.cfg.thumb_width / w)
        thumb = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 \
            else img.copy()
        th, tw = thumb.shape[:2]
        for b in ep.peak.boxes:
            cv2.rectangle(thumb, (round(b.x0 * tw), round(b.y0 * th)), (round(b.x1 * tw) - 1, round(b.y1 * th) - 1),
                          (0, 255, 0), max(2, tw // 240))
        name = f"episode-{n:04d}.jpg"
        ok, buf = cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise OSError(f"{name}: JPEG encoding failed")
        (self.folder / name).write_bytes(buf.tobytes())
        self._root_bytes += len(buf)
        s = lambda d: round((d.t_capture_ns - t0_ns) / 1e9, 3)  # noqa: E731
        entry = {"episode": n, "image": name, "start_s": s(ep.first), "end_s": s(ep.last),
                 "duration_s": round(s(ep.last) - s(ep.first), 3), "frames": ep.frames,
                 "first_frame": ep.first.frame_index, "last_frame": ep.last.frame_index,
                 "peak_score": round(ep.peak.score, 4), "peak_frame": ep.peak.frame_index,
                 "boxes": [[round(v, 4) for v in b.to_list()] for b in ep.peak.boxes]}
        line = json.dumps(entry) + "\n"
        with (self.folder / "episodes.jsonl").open("a") as f:
            f.write(line)
        self._root_bytes += len(line)
