"""tools/soak: a whole procedure's processes for a bounded time on a looping generated clip: the pipeline (with the
procedure record and the metrics endpoint on), the overlay, the web server and one real browser client (headless
Chromium with the live page open). Every ``--sample-s`` it samples each process's memory and open files, the record's
disk use, the heartbeat (fps, drops, the recent latency tail), the browser's frames (sent, acknowledged, dropped by
the server) and a metrics scrape. Says whether memory and file handles stay flat and the tail does not grow
(stream.lab.bench.soak_report); the figures go in soak.json."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

import zmq

from engines.errors import CheckFailed
from stream.lab.bench.headless import HeadlessPage
from stream.lab.bench.procs import Proc
from stream.lab.bench.scenarios import ROOT, free_endpoint, make_clip
from stream.lab.bench.soak_probe import (cpu_s, folder_mb, machine_cpu_s, open_fds, rss_mb, scrape, session_cpu_s,
                                         session_rss_mb)
from stream.lab.bench.soak_report import markdown, summarise, web_memory
from stream.wire import Status, decode


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--minutes", type=float, default=5.0, help="how long (default 5)")
    ap.add_argument("--sample-s", type=float, default=10.0, help="sampling period (default 10 s)")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--record-max-mb", type=float, default=500.0, help="record.max_mb of the run (default 500)")
    ap.add_argument("--no-browser", action="store_true", help="no browser client (the web server still runs)")
    ap.add_argument("--web-alone", action="store_true",
                    help="the web server alone for a compressed procedure: frames from a publisher in this process, "
                         "the real record writing an alert episode every --episode-s, one client that acknowledges "
                         "frames and polls the strip like the page (stream.lab.bench.web_soak)")
    ap.add_argument("--episode-s", type=float, default=2.0, help="--web-alone: seconds between alert episodes (default 2)")
    ap.add_argument("--out", default="out/soak")


def _port() -> int:
    return int(free_endpoint().rsplit(":", 1)[1])


def run(args) -> int:
    if args.web_alone:
        return run_web_alone(args)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.size.split("x"))
    clip = make_clip(out, args.fps, (w, h), 20.0, seed=31)
    ep, web_port, metrics_port = free_endpoint(), _port(), _port()
    record = out / "record"
    budget = 1000 / args.fps
    procs = {"overlay": Proc("overlay", ["-m", "stream", "overlay", "--summary-json", str(out / "overlay.json"),
                                         "--set", f"overlay.endpoint={ep}"], str(ROOT)),
             "web": Proc("web", ["-m", "stream", "web", "--listen", f"127.0.0.1:{web_port}", "--connect", ep,
                                 "--set", f"record.dir={record}"], str(ROOT))}
    time.sleep(1.5)
    procs["pipeline"] = Proc("pipeline", [
        "-m", "stream", "run", "--source", str(clip.path), "--summary-json", str(out / "pipeline.json"),
        "--set", f"publisher.endpoint={ep}", "--set", "capture.loop=true", "--set", "publisher.send_frames=true",
        "--set", "publisher.frame_encoding=raw", "--set", "engine.backend=onnxruntime",
        "--set", f"pipeline.budget_ms={budget:.1f}", "--set", f"record.dir={record}",
        "--set", f"record.max_mb={args.record_max_mb}", "--set", f"metrics.listen=127.0.0.1:{metrics_port}"], str(ROOT))
    time.sleep(2.0)
    page = None if args.no_browser else HeadlessPage(f"http://127.0.0.1:{web_port}/")
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"status")
    sub.connect(ep)
    samples, last = [], None
    t0 = time.monotonic()
    next_sample = t0 + args.sample_s
    try:
        while time.monotonic() - t0 < args.minutes * 60:
            if sub.poll(200):
                msg = decode(sub.recv_multipart())
                if isinstance(msg, Status):
                    last = msg
            if time.monotonic() >= next_sample and last is not None:
                samples.append(_sample(t0, procs, page, last, record, web_port, metrics_port))
                print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
                next_sample += args.sample_s
    finally:
        if page is not None:
            page.close()
        results = {}
        for name in ("pipeline", "web", "overlay"):
            procs[name].stop()
            results[name] = procs[name].wait(30).__dict__
            time.sleep(0.3)
        sub.close(0)
    report = summarise(samples, budget)
    report.update(minutes=args.minutes, clip=clip.path.name, codec=clip.codec, size=args.size, fps=args.fps,
                  browser="headless chromium" if page is not None else "none", processes=results)
    for name in ("pipeline", "overlay"):
        p = out / f"{name}.json"
        if p.is_file():
            report[name] = json.loads(p.read_text())
    report["samples"] = samples
    (out / "soak.json").write_text(json.dumps(report, indent=1))
    print(markdown(report))
    if not report["ok"]:
        raise CheckFailed(f"soak: {'; '.join(report['failed'])} (soak.json)")
    return 0


def run_web_alone(args) -> int:
    from stream.lab.bench.web_soak import run as web_soak
    report = web_soak(args)
    report.update(web_memory(report["samples"]))
    Path(args.out, "web_soak.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=1))
    if not report["ok"]:
        raise CheckFailed(f"web soak: {'; '.join(report['failed'])} ({args.out}/web_soak.json)")
    return 0


def _sample(t0: float, procs: dict, page, last: Status, record: Path, web_port: int, metrics_port: int) -> dict:
    lat = last.latency_ms.get("capture_to_publish", {})
    s = {"t_s": round(time.monotonic() - t0, 1)}
    for name, p in procs.items():
        s[f"rss_{name}_mb"] = rss_mb(p.p.pid)
        s[f"fds_{name}"] = open_fds(p.p.pid)
        s[f"cpu_{name}_s"] = cpu_s(p.p.pid)
    s["cpu_machine_s"] = machine_cpu_s()
    s["rss_browser_mb"] = session_rss_mb(page.pid) if page is not None and page.alive() else None
    s["cpu_browser_s"] = session_cpu_s(page.pid) if page is not None and page.alive() else None
    s["cpu_soak_s"] = round(sum(os.times()[:2]), 2)            # this process: the sampler and the scrapes
    viewer = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/state", timeout=5) as r:
            viewers = json.loads(r.read()).get("viewers") or []
        viewer = viewers[0] if viewers else {}
    except (OSError, ValueError):
        pass
    scraped, scrape_ms = scrape(f"http://127.0.0.1:{metrics_port}/metrics", "polypwatch_frames_processed_total")
    s.update(record_mb=folder_mb(record), record=last.record, state=last.state, fps=last.fps,
             processed=last.processed, dropped=last.dropped, budget_misses=last.budget_misses,
             p99_recent_ms=lat.get("p99"), max_recent_ms=lat.get("max"),
             browser_sent=viewer.get("sent"), browser_acked=viewer.get("acked"), browser_dropped=viewer.get("dropped"),
             metrics_processed=scraped, metrics_scrape_ms=scrape_ms)
    return s
