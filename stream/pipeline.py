"""The live pipeline: capture -> preprocess -> infer -> alert -> publish. This file only connects stages."""
from __future__ import annotations

import bisect
import contextlib
import dataclasses
import json
import logging
import threading
import time
from pathlib import Path

import cv2

from engines.errors import BackendError, PolypwatchError, SourceError
from engines.detector import Detector
from engines.runtime.alerts import AlertFilter
from stream.config import Config
from stream.detection import Detection
from stream.heartbeat import BeatClock
from stream.publisher import Publisher
from stream.reader import LatestFrameReader
from stream.sources import make_source
from stream.stats import RunStats
from stream.wire import FrameMessage, Status, encode_detection

log = logging.getLogger(__name__)


class EngineFailing(PolypwatchError):
    """The engine failed on too many consecutive frames."""


class Pipeline:
    def __init__(self, cfg: Config, source: str | None = None):
        self.cfg = cfg
        if cfg.preprocess.opencv_threads:       # process-wide: preprocessing runs in this thread, beside ORT's pool
            cv2.setNumThreads(cfg.preprocess.opencv_threads)
        c = cfg.capture
        self.source = make_source(source or c.source, c.width, c.height, c.fps, c.fourcc)
        self.source.open()            # a bad source fails before the model is loaded
        self.reader = LatestFrameReader(self.source, pace=c.pace, loop=c.loop, reopen_initial_s=c.reopen_initial_s,
                                        reopen_max_s=c.reopen_max_s, source_id=c.source_id)
        self.detector = Detector(cfg.engine, cfg.preprocess)
        self.alerts = AlertFilter.from_config(cfg.alerts, self.detector.meta.threshold)
        self.stats = RunStats(cfg.pipeline.budget_ms)
        self.publisher = Publisher(cfg.publisher)     # bound now: subscribers can connect before run()
        self.stop_event = threading.Event()
        self.state = "starting"
        self._consecutive_errors = 0
        self._log_file = None
        self.warmup: dict | None = None
        self.on_detection = None          # optional callback(detection, frame), e.g. replay's writers
        self.sequence_starts: tuple[int, ...] = ()   # replay: frame indices where a new recording starts
        self.record = None                # the procedure record (record.dir), made when the run starts
        self._sequence = 0

    # ------------------------------------------------------------------ stages
    def _infer(self, frame) -> Detection:
        try:
            r = self.detector.detect(frame.image)
        except (BackendError, ValueError) as e:
            return self._failed(frame, e)
        return self._decide(frame, r)

    def _failed(self, frame, e: Exception) -> Detection:
        """The engine raised on this frame: reported as such; too many in a row stop the run."""
        self._consecutive_errors += 1
        if self._consecutive_errors >= self.cfg.engine.max_consecutive_errors:
            raise EngineFailing(f"engine failed on {self._consecutive_errors} consecutive frames; last: {e}") from None
        log.warning("engine failed on frame %d: %s", frame.seq, e)
        return Detection.failed(frame.seq, frame.t_capture_ns, frame.source, str(e), self.detector.model_id,
                                {"capture": frame.t_capture_ns}, frame.index)

    def _decide(self, frame, r) -> Detection:
        """A frame's ModelResult through the temporal alert filter into its Detection."""
        self._consecutive_errors = 0
        if self.sequence_starts:            # a new recorded sequence: the alert filter forgets the last one
            k = bisect.bisect_right(self.sequence_starts, frame.index)
            if k != self._sequence:
                self._sequence = k
                self.alerts.reset()
        alert = self.alerts.update(r.score)
        t_alert = time.monotonic_ns()
        return Detection(seq=frame.seq, t_capture_ns=frame.t_capture_ns, source=frame.source, score=r.score,
                         alert=alert, boxes=r.boxes, model_id=self.detector.model_id, frame_index=frame.index,
                         times_ns={"capture": frame.t_capture_ns, "preprocess": r.t_preprocess_ns,
                                   "infer": r.t_infer_ns, "postprocess": r.t_postprocess_ns, "alert": t_alert})

    def _processed(self, d: Detection, frame) -> None:
        """Bookkeeping after a detection is published: statistics, the detections log, the callback."""
        self.stats.add(d)
        if self._log_file is not None:
            self._log_file.write(encode_detection(d)[1].decode() + "\n")
        if self.on_detection is not None:
            self.on_detection(d, frame)
        if self.record is not None:
            self.record.on_detection(d, frame.image)

    def _publish(self, d: Detection, frame) -> Detection:
        d = dataclasses.replace(d, times_ns={**d.times_ns, "publish": time.monotonic_ns()})
        self.publisher.detection(d)
        if self.cfg.publisher.send_frames:
            img = frame.image
            mw = self.cfg.publisher.frame_max_width
            if mw and img.shape[1] > mw:
                img = cv2.resize(img, (mw, round(img.shape[0] * mw / img.shape[1])), interpolation=cv2.INTER_AREA)
            self.publisher.frame(FrameMessage(frame.seq, frame.t_capture_ns, frame.source, img, frame.index))
        return d

    @property
    def site(self) -> str:
        """The site a site model was commissioned for (polypwatch adapt); '' for a shipped model."""
        return str(self.detector.meta.training.get("site_adaptation", {}).get("site", ""))

    def _status(self) -> Status:
        rs = self.reader.stats()
        return Status(state=self.state, t_ns=time.monotonic_ns(), source=self.reader.source_id,
                      model_id=self.detector.model_id, backend=self.detector.backend_name,
                      fps=round(self.stats.recent_fps(), 2), processed=self.stats.processed,
                      dropped=rs.dropped + rs.skipped, budget_misses=self.stats.budget_misses,
                      errors=self.stats.errors, budget_ms=self.cfg.pipeline.budget_ms,
                      latency_ms=self.stats.heartbeat_latency(), message=self.reader.last_error if self.state != "running" else "",
                      source_fps=round(float(self.source.fps or 0.0), 3),
                      record="" if self.record is None else ("error: " + self.record.error if self.record.error else "ok"),
                      procedure="" if self.record is None else self.record.folder.name, site=self.site)

    def _update_state(self) -> None:
        if self.reader.ended:
            return
        silent_s = (time.monotonic_ns() - (self.reader.t_last_frame_ns or self.stats.t_start_ns)) / 1e9
        self.state = "running" if self.reader.signal and silent_s < self.cfg.capture.read_timeout_s else "no_signal"

    def _warm_up(self) -> None:
        """The full per-frame path once at the source's frame size before the first real frame, so that no frame
        waits on initialisation after the state is ``running``."""
        shape = self.source.frame_shape()
        if shape is None:
            log.info("warm-up skipped: %s does not tell its frame size before the first frame", self.source.source_id)
            return
        self.warmup = self.detector.warm_up(shape)
        log.info("warm-up of the per-frame path at %dx%d: %.1f ms, then %.1f ms", shape[1], shape[0],
                 self.warmup["first_ms"], self.warmup["second_ms"])

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict:
        cfg = self.cfg
        self._open_outputs()
        beat = BeatClock(cfg.publisher.heartbeat_hz)
        t_end = time.monotonic_ns() + int(cfg.pipeline.max_seconds * 1e9) if cfg.pipeline.max_seconds else None
        metrics = contextlib.nullcontext()
        if cfg.metrics.listen:                                  # the hospital's monitoring (Prometheus text)
            from stream.metrics import MetricsServer
            metrics = MetricsServer(cfg.metrics, self)
        try:
            with self.detector, metrics:
                self.publisher.status(self._status())           # "starting" while the path warms up
                self._warm_up()
                self.reader.start(source_open=True)
                self.state = "running"
                while not self.stop_event.is_set():
                    now = time.monotonic_ns()
                    if beat.due(now):
                        self._update_state()
                        self.publisher.status(self._status())
                    if t_end is not None and now >= t_end:
                        break
                    frame = self.reader.get(timeout=beat.wait_s(time.monotonic_ns(), 0.05))
                    if frame is None:
                        if self.reader.ended:
                            if self.reader.failure:
                                self.state = "error"
                                raise SourceError(f"capture failed: {self.reader.failure}")
                            if not self.reader.stats().read:
                                self.state = "error"
                                raise SourceError(f"{self.reader.source_id}: the source ended without a single "
                                                  f"frame (not a video or image polypwatch can decode)")
                            break
                        continue
                    self._processed(self._publish(self._infer(frame), frame), frame)
                    if cfg.pipeline.max_frames and self.stats.processed >= cfg.pipeline.max_frames:
                        break
        finally:
            self.reader.stop()
            self._close_outputs()
        return self.summary()

    def _open_outputs(self) -> None:
        if self.cfg.record.dir:
            from stream.record import ProcedureRecord
            self.record = ProcedureRecord(self.cfg.record, self.reader.source_id, self.detector.model_id,
                                          source_fps=float(getattr(self.reader.source, "fps", 0.0) or 0.0))
        if self.cfg.pipeline.detections_log:
            self._log_file = Path(self.cfg.pipeline.detections_log).open("w")

    def _close_outputs(self) -> None:
        """The last heartbeat (stopped or error), then the socket and the detections log."""
        self.state = "stopped" if self.state != "error" else "error"
        self.publisher.status(self._status())
        time.sleep(0.05)       # let the last status leave before the socket closes
        self.publisher.close()
        if self._log_file is not None:
            self._log_file.close()
        if self.record is not None:
            self.record.close(self.summary())

    def summary(self) -> dict:
        rs = self.reader.stats()
        s = self.stats.summary()
        s.update(source=self.reader.source_id, model_id=self.detector.model_id, site=self.site, backend=self.detector.backend_name,
                 **self.detector.precision.record(),
                 read=rs.read, dropped=rs.dropped, skipped_by_source=rs.skipped, read_errors=rs.read_errors,
                 unreadable_frames=self.reader.unreadable[:20],
                 reopen_attempts=rs.reopen_attempts,
                 published=self.publisher.sent, publish_dropped=self.publisher.dropped,
                 endpoint=self.publisher.endpoint, warmup=self.warmup,
                 frame_graph=getattr(self.detector.backend, "graph_status", None),
                 record=None if self.record is None else self.record.report(),
                 threads={"onnxruntime": self.cfg.engine.threads, "opencv": cv2.getNumThreads()})
        return s


def format_summary(s: dict) -> str:
    lines = [f"source {s['source']}  model {s['model_id']}{'  site ' + s['site'] if s.get('site') else ''}  backend {s['backend']}  precision {s['precision']} "
             f"({s['precision_reason']})",
             f"frames read {s['read']}, processed {s['processed']}, dropped {s['dropped']} "
             f"(+{s['skipped_by_source']} skipped by the source), over the {s['budget_ms']:.0f} ms budget "
             f"{s['budget_misses']}, engine errors {s['errors']}, out of order {s['out_of_order']}, "
             f"{s['seconds']:.1f} s" + (f", {s['fps']:.1f} fps over the processing interval" if s.get("fps") else "")
             + (f"\nUNREADABLE FRAMES: {s['read_errors']} skipped and counted, e.g. {s['unreadable_frames'][0]}"
                if s.get("unreadable_frames") else ""),
             f"{'latency (ms)':<28}{'p50':>8}{'p95':>8}{'p99':>8}{'p99.9':>8}{'max':>8}"]
    for name, table in (("stage", s["stage"]), ("capture ->", s["capture_to"])):
        for stage, p in table.items():
            if not p["count"]:
                continue
            label = f"{name} {stage}" if name == "capture ->" else f"  {stage}"
            lines.append(f"{label:<28}{p['p50']:>8.2f}{p['p95']:>8.2f}{p['p99']:>8.2f}{p['p99_9']:>8.2f}{p['max']:>8.2f}")
    return "\n".join(lines)


def summary_json(s: dict) -> str:
    return json.dumps(s, indent=1)
