"""A study's progress: frames done (finished inputs plus the lines of the detections being written), frames per
second, time left. Read from the output folder, so it works the same for worker processes and Ray tasks."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path


class LineCounter:
    """Lines of files that only grow: each poll reads what was appended since the last one."""

    def __init__(self):
        self._seen: dict[Path, tuple[int, int]] = {}     # path -> (bytes read, lines counted)

    def lines(self, path: Path) -> int:
        offset, count = self._seen.get(path, (0, 0))
        try:
            with open(path, "rb") as f:
                if path.stat().st_size < offset:          # written anew (a retried input): count from the start
                    offset, count = 0, 0
                f.seek(offset)
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    count += chunk.count(b"\n")
                    offset += len(chunk)
        except OSError:
            return count
        self._seen[path] = (offset, count)
        return count

    def running(self, folder: Path, pattern: str) -> int:
        paths = set(folder.glob(pattern))
        for gone in set(self._seen) - paths:            # finished inputs are counted by ``finished``
            del self._seen[gone]
        return sum(self.lines(p) for p in paths)


class StudyProgress:
    def __init__(self, out: Path, total_frames: int, total_inputs: int, interval_s: float = 1.0, stream=None):
        self.out, self.total_frames, self.total_inputs = out, max(total_frames, 1), total_inputs
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self.done_frames = self.done_inputs = self.failed = 0
        self._t0 = time.monotonic()
        self._last_log = 0.0
        self._counter = LineCounter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="study-progress", daemon=True)

    def __enter__(self) -> "StudyProgress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.show(final=True)

    def finished(self, frames: int, failed: bool) -> None:
        with self._lock:
            self.done_frames += frames
            self.done_inputs += 1
            self.failed += int(failed)

    def snapshot(self) -> dict:
        with self._lock:
            running = self._counter.running(self.out, "*.partial/detections.jsonl")
            frames = min(self.done_frames + running, self.total_frames)
            inputs, failed = self.done_inputs, self.failed
        elapsed = max(time.monotonic() - self._t0, 1e-6)
        fps = frames / elapsed
        left = (self.total_frames - frames) / fps if fps > 0 else None
        return {"inputs": inputs, "failed": failed, "frames": frames, "fps": fps, "eta_s": left, "elapsed_s": elapsed}

    def line(self) -> str:
        s = self.snapshot()
        eta = "–" if s["eta_s"] is None else f"{s['eta_s'] / 60:.1f} min"
        return (f"study: {s['inputs']}/{self.total_inputs} inputs ({s['failed']} failed), {s['frames']}/"
                f"{self.total_frames} frames, {s['fps']:.1f} fps, time left {eta}")

    def show(self, final: bool = False) -> None:
        tty = getattr(self.stream, "isatty", lambda: False)()
        now = time.monotonic()
        if tty:
            print("\r" + self.line(), end="\n" if final else "", file=self.stream, flush=True)
        elif final or now - self._last_log >= 10:
            self._last_log = now
            print(self.line(), file=self.stream, flush=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.show()
