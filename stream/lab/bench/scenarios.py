"""Benchmark scenarios: each runs real processes on a generated clip and returns one row of figures."""
from __future__ import annotations

import json
import shutil
import socket
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stream.lab.bench.procs import Proc

ROOT = Path(__file__).resolve().parents[3]          # the repository (stream/lab/bench/ -> .)


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


@dataclass(frozen=True)
class Clip:
    path: Path
    fps: int
    width: int
    height: int
    seconds: float
    codec: str


def make_clip(folder: Path, fps: int, size: tuple[int, int], seconds: float, seed: int = 21) -> Clip:
    """A generated clip, H.264 when ffmpeg is on PATH, else mp4v; reused when already there."""
    from engines.synthetic.clip import write_clip
    from engines.synthetic.params import SynthParams
    codec = "h264" if shutil.which("ffmpeg") else "mp4v"
    path = folder / f"clip_{size[0]}x{size[1]}_{fps}fps_{seconds:g}s_{codec}.mp4"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_clip(SynthParams(seed=seed, seconds=seconds, width=size[0], height=size[1], fps=fps), path, codec=codec)
    return Clip(path, fps, size[0], size[1], seconds, codec)


@dataclass
class Row:
    scenario: str
    clip: str
    figures: dict = field(default_factory=dict)
    processes: list = field(default_factory=list)


def _pipeline_args(clip: Clip, summary: Path, endpoint: str, extra: list[str]) -> list[str]:
    args = ["-m", "stream", "run", "--source", str(clip.path), "--summary-json", str(summary),
            "--set", f"publisher.endpoint={endpoint}", "--set", f"pipeline.budget_ms={1000 / clip.fps:.1f}"]
    for e in extra:
        args += ["--set", e]
    return args


def _live_figures(s: dict, clip: Clip) -> dict:
    ctp = s["capture_to"]["publish"]
    return {"capture_to_publish_ms": ctp, "stage_p50_ms": {k: v["p50"] for k, v in s["stage"].items()},
            "stage_p99_ms": {k: v["p99"] for k, v in s["stage"].items()}, "warmup": s.get("warmup"),
            "processed": s["processed"], "dropped": s["dropped"] + s["skipped_by_source"],
            "drop_percent": round(100 * (s["dropped"] + s["skipped_by_source"]) / max(s["read"], 1), 2),
            "over_budget": s["budget_misses"], "budget_ms": s["budget_ms"],
            "fps": s.get("fps"), "read": s["read"], "processing_seconds": s.get("processing_seconds")}


def pipeline(clip: Clip, work: Path, name: str, extra: list[str], pace: bool = True) -> Row:
    summary = work / f"{name}.json"
    ep = free_endpoint()
    proc = Proc("pipeline", _pipeline_args(clip, summary, ep, extra + ([] if pace else ["capture.pace=false"])), str(ROOT))
    res = proc.wait(timeout=clip.seconds * 6 + 60)
    row = Row(name, clip.path.name, processes=[asdict(res)])
    if res.returncode != 0 or not summary.is_file():
        row.figures = {"error": res.stderr_tail}
        return row
    row.figures = _live_figures(json.loads(summary.read_text()), clip)
    return row


def pipeline_recorded(clip: Clip, work: Path, name: str, extra: list[str]) -> Row:
    """The live pipeline with the procedure record (record.dir) and the metrics endpoint on, scraped once a second
    (a hospital's Prometheus scrapes every 15 s or so: this is the heavier case)."""
    import threading
    import urllib.request
    port = int(free_endpoint().rsplit(":", 1)[1])
    record = work / f"{name}-record"
    shutil.rmtree(record, ignore_errors=True)
    done = threading.Event()
    scrapes = [0, 0]

    def scrape() -> None:
        while not done.wait(1.0):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    r.read()
                scrapes[0] += 1
            except OSError:
                scrapes[1] += 1
    t = threading.Thread(target=scrape, daemon=True)
    t.start()
    try:
        row = pipeline(clip, work, name, extra + [f"record.dir={record}", f"metrics.listen=127.0.0.1:{port}"])
    finally:
        done.set()
        t.join(5)
    row.figures["metrics_scrapes"] = {"ok": scrapes[0], "failed": scrapes[1]}
    return row


def pipeline_with_overlay(clip: Clip, work: Path, name: str, extra: list[str]) -> Row:
    ep = free_endpoint()
    ov_summary, pl_summary = work / f"{name}-overlay.json", work / f"{name}.json"
    ov = Proc("overlay", ["-m", "stream", "overlay", "--summary-json", str(ov_summary), "--set", f"overlay.endpoint={ep}",
                          "--set", f"overlay.max_seconds={clip.seconds + 8}"], str(ROOT))
    time.sleep(1.5)                                   # the overlay is up before the first frame
    pl = Proc("pipeline", _pipeline_args(clip, pl_summary, ep, extra + ["publisher.send_frames=true",
                                                                         "publisher.frame_encoding=raw"]), str(ROOT))
    pres = pl.wait(timeout=clip.seconds * 6 + 60)
    time.sleep(0.5)
    ov.stop()
    ores = ov.wait(timeout=30)
    row = Row(name, clip.path.name, processes=[asdict(pres), asdict(ores)])
    if not (pl_summary.is_file() and ov_summary.is_file()):
        row.figures = {"error": pres.stderr_tail + ores.stderr_tail}
        return row
    figs = _live_figures(json.loads(pl_summary.read_text()), clip)
    o = json.loads(ov_summary.read_text())
    figs.update(capture_to_draw_ms=o["capture_to_draw_ms"], frames_drawn=o["frames_drawn"])
    row.figures = figs
    return row


def python_module(clip: Clip, work: Path, name: str, module: str, args: list[str], positional_clip: bool = True) -> Row:
    out = work / f"{name}.json"
    argv = [str(clip.path), *args[:1], str(out), *args[1:]] if positional_clip else [str(out), *args]
    res = Proc(name, ["-m", module, *argv], str(ROOT)).wait(clip.seconds * 10 + 120)
    row = Row(name, clip.path.name, processes=[asdict(res)])
    row.figures = json.loads(out.read_text()) if out.is_file() else {"error": res.stderr_tail}
    return row


def median_rows(runs: list[Row]) -> Row:
    """Median of every numeric figure over repeated runs (nested dicts too); processes of the median run."""
    def med(values):
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(nums) == len(values) and nums:
            return round(statistics.median(nums), 3)
        if all(isinstance(v, dict) for v in values):
            return {k: med([v.get(k) for v in values]) for k in values[0]}
        return values[0]
    ok = [r for r in runs if "error" not in r.figures]
    if not ok:
        return runs[0]
    figs = med([r.figures for r in ok])
    figs["runs"] = len(ok)
    procs = [{k: med([r.processes[i][k] for r in ok]) for k in ok[0].processes[i] if k != "stderr_tail"}
             for i in range(len(ok[0].processes))]
    return Row(ok[0].scenario, ok[0].clip, figs, procs)
