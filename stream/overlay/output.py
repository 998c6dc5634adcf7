"""Where the overlay's drawn frames go: a window (its key presses read back) and the annotated video file."""
from __future__ import annotations

import logging

import cv2
import numpy as np

from engines.errors import ConfigError

log = logging.getLogger(__name__)


class Output:
    def __init__(self, cfg):
        self.cfg = cfg
        self.writer = None
        self.size = None
        self.source_fps = 0.0            # the source's own rate: from the heartbeat, or the capture source
        self.unrecorded = 0              # frames shown before the source's rate was known (not in the file)
        self.key = 255                   # the key pressed in the window at the last show (255: none)
        if cfg.show_window:
            if not hasattr(cv2, "namedWindow"):
                raise ConfigError("overlay.show_window: this OpenCV build has no GUI (opencv-python-headless); "
                                  "install opencv-python or write to overlay.output")
            try:
                cv2.namedWindow(cfg.window_name, cv2.WINDOW_NORMAL)
                if cfg.fullscreen:
                    cv2.setWindowProperty(cfg.window_name, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
            except cv2.error as e:
                raise ConfigError(f"overlay.show_window: cannot open a window ({e})") from None

    def show(self, img: np.ndarray, record: bool = True) -> None:
        if self.cfg.output and record:
            self._record(img)
        if self.cfg.show_window:
            cv2.imshow(self.cfg.window_name, img)
            self.key = cv2.waitKey(1) & 0xFF

    def _record(self, img: np.ndarray) -> None:
        """The annotated video at the source's own frame rate (overlay.output_fps overrides it), so that it lasts
        as long as the procedure; frames before the rate is known are shown but not recorded."""
        if self.writer is None:
            fps = self.cfg.output_fps or self.source_fps
            if not fps:
                self.unrecorded += 1
                return
            self.size = (img.shape[1], img.shape[0])
            self.writer = cv2.VideoWriter(self.cfg.output, cv2.VideoWriter_fourcc(*"mp4v"), fps, self.size)
            if not self.writer.isOpened():
                raise ConfigError(f"overlay.output: cannot write a video to {self.cfg.output!r}")
            log.info("recording %s at %.3g fps", self.cfg.output, fps)
        if (img.shape[1], img.shape[0]) != self.size:
            img = cv2.resize(img, self.size)
        self.writer.write(img)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.cfg.show_window:
            cv2.destroyAllWindows()
