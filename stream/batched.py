"""Every frame of a file in batches (``engine.batch_size`` > 1; replay, or ``run`` with ``capture.pace: false``): decoding runs ahead in its own thread, frames are
inferred B at a time, and each frame then goes through the alert filter, the publisher and the callbacks exactly
as in ``Pipeline`` and in the same order, so detections.jsonl is the same as an unbatched replay's (scores within
floating-point noise of a batched matrix product; alerts and order identical, tested).

Only for QA over files: the live path never batches (it takes the newest single frame)."""
from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from engines.errors import BackendError, FrameUnreadable, SourceEnded, SourceError
from stream.frame import Frame
from stream.heartbeat import BeatClock
from stream.pipeline import Pipeline

log = logging.getLogger(__name__)
_END = object()


class BatchedPipeline(Pipeline):
    def __init__(self, cfg, source: str | None = None):
        super().__init__(cfg, source)
        self.batch = cfg.engine.batch_size
        self.decoded = 0
        self.decode_error = ""

    def _decode(self, q: queue.Queue, stop: threading.Event) -> None:
        """Reads the source ahead into ``q`` (bounded: decoding never runs more than two batches ahead)."""
        src, seq = self.source, 0
        try:
            while not stop.is_set():
                try:
                    image, index = src.read()
                except SourceEnded:
                    break
                except FrameUnreadable as e:                # one bad frame of a folder: counted, the rest goes on
                    self.reader.unreadable.append(str(e)[:300])
                    log.warning("%s", e)
                    continue
                t = time.monotonic_ns()
                try:
                    frame = Frame(seq=seq, t_capture_ns=t, t_wall_ns=time.time_ns(), image=image,
                                  source=self.reader.source_id, index=index)
                except (TypeError, ValueError) as e:
                    log.warning("dropping a malformed frame %d: %s", index, e)
                    continue
                seq += 1
                self.decoded += 1
                while not stop.is_set():
                    try:
                        q.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except SourceError as e:
            self.decode_error = str(e)
            log.error("source failed: %s", e)
        finally:
            q.put(_END)

    def _take(self, q: queue.Queue) -> tuple[list[Frame], bool]:
        """The next batch in order. A frame's clock starts when it enters its batch (as in unbatched QA mode, where
        it starts at hand-over), so its latency is its batch's processing time, not the decode queue's wait."""
        frames: list[Frame] = []
        ended = False
        while len(frames) < self.batch:
            item = q.get()
            if item is _END:
                ended = True
                break
            frames.append(item)
        t = time.monotonic_ns()
        return [dataclasses.replace(f, t_capture_ns=t) for f in frames], ended

    def run(self) -> dict:
        cfg = self.cfg
        self._open_outputs()
        q: queue.Queue = queue.Queue(maxsize=2 * self.batch)
        stop = threading.Event()
        decoder = threading.Thread(target=self._decode, args=(q, stop), name="decode", daemon=True)
        workers = max(1, min(8, (os.cpu_count() or 2) - 1))
        beat = BeatClock(cfg.publisher.heartbeat_hz)
        try:
            with self.detector, ThreadPoolExecutor(workers, thread_name_prefix="preprocess") as pool:
                self.publisher.status(self._status())
                self._warm_up()
                decoder.start()
                self.state = "running"
                ended = False
                while not ended and not self.stop_event.is_set():
                    if beat.due(time.monotonic_ns()):
                        self.publisher.status(self._status())
                    frames, ended = self._take(q)
                    if not frames:
                        break
                    try:
                        results = self.detector.detect_batch([f.image for f in frames], pool)
                    except (BackendError, ValueError) as e:
                        results = [e] * len(frames)
                    for f, r in zip(frames, results):
                        d = self._failed(f, r) if isinstance(r, Exception) else self._decide(f, r)
                        self._processed(self._publish(d, f), f)
                    if cfg.pipeline.max_frames and self.stats.processed >= cfg.pipeline.max_frames:
                        break
                if self.decode_error:
                    self.state = "error"
                    raise SourceError(f"capture failed: {self.decode_error}")
        finally:
            stop.set()
            if decoder.is_alive():
                decoder.join(5.0)
            self.source.close()
            self._close_outputs()
        return self.summary()

    def _warm_up(self) -> None:
        super()._warm_up()
        shape = self.source.frame_shape()
        if shape is not None and self.batch > 1:        # the batch shape too (a CUDA graph per batch size)
            self.warmup.update(self.detector.warm_up(shape, batch=self.batch))

    def summary(self) -> dict:
        s = super().summary()
        s.update(read=self.decoded, dropped=0, batch_size=self.batch, read_errors=len(self.reader.unreadable),
                 unreadable_frames=self.reader.unreadable[:20])
        return s
