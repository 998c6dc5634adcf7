"""One real browser client for a soak run: a headless Chromium (Debian's ``chromium``, ``make browser``) with the
live page open, in its own session so that it and its helper processes can be measured and ended together."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--mute-audio",
         "--remote-debugging-port=0", "--window-size=1280,900")


def chromium_path() -> str | None:
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


class HeadlessPage:
    """``HeadlessPage(url)`` opens ``url``; ``.pid`` is the session to measure; ``close()`` ends every process."""

    def __init__(self, url: str):
        exe = chromium_path()
        if exe is None:
            raise FileNotFoundError("no chromium on PATH (make browser)")
        self.profile = tempfile.mkdtemp(prefix="polypwatch-soak-chromium-")
        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={self.profile}", url],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._signal(signal.SIGKILL)                  # helpers that outlived the main process
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
