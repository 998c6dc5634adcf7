"""The capture thread: reads the source and hands over only the newest frame.

Live (paced) mode: a frame that is replaced before the pipeline took it is dropped and counted.
QA mode (``pace=False`` on a finite source): the reader waits for the pipeline; no frame is dropped.
A failing live source is reported (``signal`` False) and reopened with exponential backoff.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from engines.errors import FrameUnreadable, SourceEnded, SourceError
from stream.frame import Frame
from stream.sources import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReaderStats:
    read: int            # frames read from the source
    dropped: int         # frames replaced before the pipeline took them
    skipped: int         # frames the source itself skipped (index gaps: a paced synthetic source, late reads)
    reopen_attempts: int
    read_errors: int


class LatestFrameReader:
    def __init__(self, source: Source, pace: bool = True, loop: bool = False, reopen_initial_s: float = 0.5,
                 reopen_max_s: float = 5.0, source_id: str = ""):
        self.source = source
        self.pace = pace
        self.loop = loop
        self.backoff = (reopen_initial_s, reopen_max_s)
        self.source_id = source_id or source.source_id
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._waiting = 0            # consumers blocked in get() (QA mode hands a frame over only on request)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ended = False
        self.signal = False          # True while frames are arriving
        self.last_error = ""
        self.failure = ""            # set when the capture thread died of an unexpected error
        self._seq = 0
        self._read = self._dropped = self._skipped = self._reopens = self._errors = 0
        self.unreadable: list[str] = []       # the frames of a folder that could not be read (names, why)
        self.t_last_frame_ns = 0

    # ------------------------------------------------------------------ consumer side
    def start(self, source_open: bool = False) -> "LatestFrameReader":
        if not source_open:
            self.source.open()       # first open in the caller: a bad source fails fast and clearly
        self.signal = True
        self.t_last_frame_ns = time.monotonic_ns()      # silence is measured from the start, not from construction
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()
        return self

    def get(self, timeout: float) -> Frame | None:
        """The newest frame not yet taken, waiting up to ``timeout`` seconds; None if none came."""
        with self._cond:
            if self._slot is None:
                self._waiting += 1
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._slot is not None or self.ended, timeout)
                self._waiting -= 1
            f, self._slot = self._slot, None
            if f is not None:
                self._cond.notify_all()
            return f

    def stats(self) -> ReaderStats:
        return ReaderStats(self._read, self._dropped, self._skipped, self._reopens, self._errors)

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.source.close()

    # ------------------------------------------------------------------ capture thread
    @property
    def blocking(self) -> bool:
        """QA mode: a finite source read as fast as the pipeline takes frames, none dropped."""
        return not self.pace and not self.source.live

    def _wait_for_free_slot(self) -> None:
        """QA mode: wait until the pipeline asks for its next frame (so its clock starts at hand-over)."""
        with self._cond:
            self._cond.wait_for(lambda: (self._slot is None and self._waiting > 0) or self._stop.is_set())

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self._slot is not None:
                self._dropped += 1
            self._slot = frame
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:          # an unexpected bug must end the run loudly, never leave it waiting
            log.exception("capture thread failed")
            self.failure = f"{type(e).__name__}: {e}"
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def _loop(self) -> None:
        src = self.source
        t0 = time.monotonic_ns()
        if self.pace and hasattr(src, "clock_start"):
            src.clock_start = t0
        last_index = -1
        delay = self.backoff[0]
        while not self._stop.is_set():
            try:
                image, index = src.read()
            except SourceEnded:
                if self.loop:
                    src.open()
                    t0 = time.monotonic_ns()
                    if self.pace and hasattr(src, "clock_start"):
                        src.clock_start = t0
                    last_index = -1
                    continue
                with self._cond:
                    self.ended = True
                    self._cond.notify_all()
                return
            except FrameUnreadable as e:                  # one bad frame of a folder: counted, the rest goes on
                self._errors += 1
                self.last_error = str(e)
                self.unreadable.append(str(e)[:300])
                last_index = max(last_index, e.index)     # not also counted as skipped by the source
                log.warning("%s", e)
                continue
            except SourceError as e:
                self._errors += 1
                self.last_error = str(e)
                if not src.live:
                    log.error("source failed: %s", e)
                    with self._cond:
                        self.ended = True
                        self._cond.notify_all()
                    return
                self.signal = False
                log.warning("no signal (%s); reopening in %.1f s", e, delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.backoff[1])
                self._reopens += 1
                try:
                    src.close()
                    src.open()
                except SourceError as e2:
                    self.last_error = str(e2)
                continue
            if self.blocking:
                self._wait_for_free_slot()      # QA mode: a frame's clock starts when it enters the pipeline
            t_ns = time.monotonic_ns()
            delay = self.backoff[0]
            if self.pace and src.finite:
                due = t0 + int(index * 1e9 / src.fps)       # file/folder/synthetic: release at its own frame rate
                if due > t_ns:
                    if self._stop.wait((due - t_ns) / 1e9):
                        return
                    t_ns = time.monotonic_ns()
            if last_index >= 0 and index > last_index + 1:
                self._skipped += index - last_index - 1
            last_index = index
            try:
                frame = Frame(seq=self._seq, t_capture_ns=t_ns, t_wall_ns=time.time_ns(), image=image,
                              source=self.source_id, index=index)
            except (TypeError, ValueError) as e:          # a malformed frame is a read error, never a crash
                self._errors += 1
                self.last_error = f"{self.source_id} frame {index}: {e}"
                log.warning("dropping a malformed frame: %s", self.last_error)
                continue
            self._read += 1
            self.signal = True
            self.t_last_frame_ns = t_ns
            self._seq += 1
            self._put(frame)
