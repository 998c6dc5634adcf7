"""What a soak run samples from outside the processes: resident memory and open file descriptors (from /proc), a
process group's memory (a browser and its helpers), a folder's size on disk, and the metrics endpoint."""
from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


def machine_cpu_s() -> dict:
    """The whole machine's CPU seconds so far (all cores): busy (everything but idle and iowait), and stolen by the
    host. With the processes' own, a slower stretch can be told apart: our work grew, or the machine got less."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = v[3] + v[4]
    steal = v[7] if len(v) > 7 else 0
    return {"busy": round((sum(v[:8]) - idle - steal) / tick, 2), "steal": round(steal / tick, 2),
            "total": round(sum(v[:8]) / tick, 2)}


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def session_pids(sid: int) -> list[int]:
    """Every process of session ``sid`` (a browser started in its own session: the main process and its helpers)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:          # after the command: state, ppid, pgrp, session
            out.append(int(name))
    return out


def session_rss_mb(sid: int) -> float | None:
    vals = [v for v in (rss_mb(p) for p in session_pids(sid)) if v is not None]
    return round(sum(vals), 1) if vals else None


def session_cpu_s(sid: int) -> float | None:
    vals = [v for v in (cpu_s(p) for p in session_pids(sid)) if v is not None]
    return round(sum(vals), 2) if vals else None


def folder_mb(path: Path) -> float:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return round(total / 1e6, 2)


def scrape(url: str, name: str) -> tuple[float | None, float]:
    """The value of the first sample of metric ``name`` at ``url`` and the scrape's time in ms (None if it failed)."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None, round((time.monotonic() - t0) * 1e3, 1)
    ms = round((time.monotonic() - t0) * 1e3, 1)
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1]), ms
    return None, ms
