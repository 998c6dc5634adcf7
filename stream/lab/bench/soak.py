"""tools/soak: the pipeline and the overlay on a looping generated clip for a bounded time, sampling memory
(RSS of each process), latency and drops from the heartbeat; reports whether memory stays flat and the
tail stays within budget."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import zmq

from engines.errors import CheckFailed
from stream.lab.bench.procs import Proc
from stream.lab.bench.scenarios import ROOT, free_endpoint, make_clip
from stream.wire import Status, decode


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--minutes", type=float, default=5.0, help="how long (default 5)")
    ap.add_argument("--sample-s", type=float, default=10.0, help="sampling period (default 10 s)")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--out", default="out/soak")


def run(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.size.split("x"))
    clip = make_clip(out, args.fps, (w, h), 20.0, seed=31)
    ep = free_endpoint()
    budget = 1000 / args.fps
    ov = Proc("overlay", ["-m", "stream", "overlay", "--summary-json", str(out / "overlay.json"),
                          "--set", f"overlay.endpoint={ep}", "--set", f"overlay.latency_log={out / 'draw.jsonl'}"], str(ROOT))
    time.sleep(1.5)
    pl = Proc("pipeline", ["-m", "stream", "run", "--source", str(clip.path), "--summary-json", str(out / "pipeline.json"),
                           "--set", f"publisher.endpoint={ep}", "--set", "capture.loop=true",
                           "--set", "publisher.send_frames=true", "--set", "publisher.frame_encoding=raw",
                           "--set", "engine.backend=onnxruntime", "--set", f"pipeline.budget_ms={budget:.1f}"], str(ROOT))
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"status")
    sub.connect(ep)
    samples, last = [], None
    t0 = time.monotonic()
    next_sample = t0 + args.sample_s
    while time.monotonic() - t0 < args.minutes * 60:
        if sub.poll(200):
            msg = decode(sub.recv_multipart())
            if isinstance(msg, Status):
                last = msg
        if time.monotonic() >= next_sample and last is not None:
            lat = last.latency_ms.get("capture_to_publish", {})
            samples.append({"t_s": round(time.monotonic() - t0, 1), "rss_pipeline_mb": rss_mb(pl.p.pid),
                            "rss_overlay_mb": rss_mb(ov.p.pid), "state": last.state, "fps": last.fps,
                            "processed": last.processed, "dropped": last.dropped, "budget_misses": last.budget_misses,
                            "p99_recent_ms": lat.get("p99"), "max_recent_ms": lat.get("max")})
            print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
            next_sample += args.sample_s
    pl.stop()
    pres = pl.wait(30)
    time.sleep(0.5)
    ov.stop()
    ores = ov.wait(30)
    sub.close(0)
    report = summarise(samples, budget)
    report.update(minutes=args.minutes, clip=clip.path.name, codec=clip.codec, processes=[pres.__dict__, ores.__dict__])
    for name in ("pipeline", "overlay"):
        p = out / f"{name}.json"
        if p.is_file():
            report[name] = json.loads(p.read_text())
    report["samples"] = samples
    (out / "soak.json").write_text(json.dumps(report, indent=1))
    print(markdown(report))
    if not (report["memory_flat"] and report["tail_within_budget"]):
        raise CheckFailed(f"memory flat: {report['memory_flat']}, latency tail within budget: "
                          f"{report['tail_within_budget']} (soak.json)")
    return 0


def summarise(samples: list[dict], budget_ms: float) -> dict:
    if len(samples) < 4:
        return {"memory_flat": False, "tail_within_budget": False, "note": "too few samples"}
    q = max(1, len(samples) // 4)
    first, last = samples[q:2 * q], samples[-q:]             # skip warm-up; compare the 2nd quarter with the last
    def avg(rows, k):
        vals = [r[k] for r in rows if r[k] is not None]
        return sum(vals) / len(vals) if vals else None
    growth = {k: round(avg(last, k) - avg(first, k), 1) for k in ("rss_pipeline_mb", "rss_overlay_mb")}
    worst_p99 = max(r["p99_recent_ms"] or 0 for r in samples)
    return {"rss_growth_mb": growth, "memory_flat": all(abs(v) < 20 for v in growth.values()),
            "worst_recent_p99_ms": worst_p99, "budget_ms": round(budget_ms, 1),
            "tail_within_budget": worst_p99 <= budget_ms,
            "dropped_total": samples[-1]["dropped"], "processed_total": samples[-1]["processed"],
            "budget_misses_total": samples[-1]["budget_misses"]}


def markdown(r: dict) -> str:
    lines = ["| t (s) | pipeline RSS MB | overlay RSS MB | fps | processed | dropped | over budget | p99 recent (ms) |",
             "|---|---|---|---|---|---|---|---|"]
    for s in r.get("samples", []):
        lines.append(f"| {s['t_s']} | {s['rss_pipeline_mb']:.0f} | {s['rss_overlay_mb']:.0f} | {s['fps']} | {s['processed']} "
                     f"| {s['dropped']} | {s['budget_misses']} | {s['p99_recent_ms']} |")
    lines.append(f"\nRSS growth (2nd quarter -> last quarter): {r.get('rss_growth_mb')}; memory flat: {r.get('memory_flat')}; "
                 f"worst recent p99 {r.get('worst_recent_p99_ms')} ms vs budget {r.get('budget_ms')} ms: "
                 f"{'within' if r.get('tail_within_budget') else 'OVER'}")
    return "\n".join(lines)
