"""Running a scenario's processes and measuring each: CPU time and peak memory from os.wait4's rusage."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass
class ProcResult:
    name: str
    returncode: int
    wall_s: float
    cpu_s: float
    cpu_percent: float          # of one core, over the process's life
    peak_rss_mb: float
    stderr_tail: str


class Proc:
    def __init__(self, name: str, args: list[str], cwd: str):
        self.name = name
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)

    def wait(self, timeout: float) -> ProcResult:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.05)
        else:
            self.p.kill()
            pid, status, ru = os.wait4(self.p.pid, 0)
        self.p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - self.t0
        cpu = ru.ru_utime + ru.ru_stime
        err = self.p.stderr.read()[-1500:] if self.p.stderr else ""
        return ProcResult(self.name, self.p.returncode, round(wall, 2), round(cpu, 2), round(100 * cpu / wall, 1),
                          round(ru.ru_maxrss / 1024, 1), err)
