"""The annotated QA video: every processed frame with the detector's drawing and the truth boxes.

Writing runs in its own thread behind a bounded queue; in real-time replay a full queue skips the
annotation of a frame (counted) rather than slowing the detector.
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path

import cv2
import numpy as np

from engines.truth import GroundTruth
from stream.detection import AlertState, Detection
from stream.overlay.draw import render
from stream.overlay.state import Display, Verdict

TRUTH_COLOR = (255, 255, 255)


def annotate(image: np.ndarray, det: Detection, truth: GroundTruth | None, style) -> np.ndarray:
    img = image.copy()
    h, w = img.shape[:2]
    if truth is not None and 0 <= det.frame_index < truth.frame_count:
        for fp in truth.frames[det.frame_index]:
            x0, y0, x1, y1 = fp.box
            cv2.rectangle(img, (int(x0 * w), int(y0 * h)), (int(x1 * w) - 1, int(y1 * h) - 1), TRUTH_COLOR, 1,
                          cv2.LINE_AA)
    verdict = Verdict(Display.STALE if det.alert is AlertState.ERROR else Display.ACTIVE,
                      None if det.error else det, 0.0)
    render(img, verdict, style, det.latency_ns("publish") / 1e6 if det.latency_ns("publish") else None)
    cv2.putText(img, f"#{det.frame_index} p={det.score:.2f}", (int(0.01 * w), h - int(0.02 * h)),
                cv2.FONT_HERSHEY_SIMPLEX, max(0.4, h / 1080), (230, 230, 230), 1, cv2.LINE_AA)
    return img


class AnnotatedVideo:
    def __init__(self, path: Path, fps: float, truth: GroundTruth | None, style, block: bool, max_width: int = 1280):
        self.path, self.fps, self.truth, self.style, self.block = path, fps, truth, style, block
        self.max_width = max_width
        self.q: queue.Queue = queue.Queue(maxsize=64)
        self.skipped = 0
        self.written = 0
        self._writer = None
        self._thread = threading.Thread(target=self._run, name="annotate", daemon=True)
        self._thread.start()

    def put(self, image: np.ndarray, det: Detection) -> None:
        if self.block:
            self.q.put((image, det))
            return
        try:
            self.q.put_nowait((image, det))
        except queue.Full:
            self.skipped += 1

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            image, det = item
            if image.shape[1] > self.max_width:
                s = self.max_width / image.shape[1]
                image = cv2.resize(image, (self.max_width, int(round(image.shape[0] * s))), interpolation=cv2.INTER_AREA)
            img = annotate(image, det, self.truth, self.style)
            if self._writer is None:
                self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                               (img.shape[1], img.shape[0]))
            self._writer.write(img)
            self.written += 1

    def close(self) -> None:
        self.q.put(None)
        self._thread.join()
        if self._writer is not None:
            self._writer.release()
