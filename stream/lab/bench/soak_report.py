"""A soak run's verdict from its samples: memory and open files flat, the latency tail not growing, the browser
client still fed, the metrics endpoint answering; and the table for docs/RELIABILITY.md."""
from __future__ import annotations

import statistics

PROCESSES = ("pipeline", "overlay", "web", "browser")
MEMORY_GROWTH_MB = 20.0          # between the 2nd quarter and the last (the 1st is warm-up)
WEB_GROWTH_MB = 5.0              # --web-alone: the server alone, where nothing else moves its memory
WEB_SLOPE_MB_H = 2.0
TAIL_GROWTH_MS = 3.0             # the median recent p99 of the last quarter over the 2nd's


def _avg(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def _median(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarise(samples: list[dict], budget_ms: float) -> dict:
    if len(samples) < 8:
        return {"ok": False, "failed": ["too few samples"]}
    q = len(samples) // 4
    second, last = samples[q:2 * q], samples[-q:]
    rep: dict = {"budget_ms": round(budget_ms, 1), "samples_n": len(samples)}
    failed = []

    def growth(key: str) -> float | None:
        a, b = _avg(second, key), _avg(last, key)
        return None if a is None or b is None else round(b - a, 1)
    rep["rss_growth_mb"] = {p: growth(f"rss_{p}_mb") for p in PROCESSES}
    rep["rss_slope_mb_per_h"] = {p: slope_per_hour(samples[q:], f"rss_{p}_mb") for p in PROCESSES}    # after warm-up
    rep["fds_growth"] = {p: growth(f"fds_{p}") for p in PROCESSES if p != "browser"}
    failed += [f"{p} memory grew {g} MB" for p, g in rep["rss_growth_mb"].items() if g is not None and g > MEMORY_GROWTH_MB]
    failed += [f"{p} open files grew by {g}" for p, g in rep["fds_growth"].items() if g is not None and g >= 1]
    tail = {"second_quarter_median_p99_ms": _median(second, "p99_recent_ms"),
            "last_quarter_median_p99_ms": _median(last, "p99_recent_ms"),
            "worst_recent_p99_ms": max((r.get("p99_recent_ms") or 0) for r in samples)}
    rep["tail"] = tail
    if tail["second_quarter_median_p99_ms"] is None or tail["last_quarter_median_p99_ms"] is None:
        failed.append("no latency figures")
    elif tail["last_quarter_median_p99_ms"] - tail["second_quarter_median_p99_ms"] > TAIL_GROWTH_MS:
        failed.append("the latency tail grew")
    first, end = samples[0], samples[-1]
    span = end["t_s"] - first["t_s"]
    rep["totals"] = {k: end.get(k) for k in ("processed", "dropped", "budget_misses", "browser_sent", "browser_acked",
                                              "browser_dropped", "record_mb")}
    rep["record_errors"] = sorted({r["record"] for r in samples if str(r.get("record", "")).startswith("error")})
    if end.get("browser_acked") is not None and first.get("browser_acked") is not None and span > 0:
        rep["browser_fps"] = round((end["browser_acked"] - first["browser_acked"]) / span, 2)
        if _avg(last, "browser_acked") is None or last[-1]["browser_acked"] == last[0]["browser_acked"]:
            failed.append("the browser client stopped receiving frames")
    if any(r.get("metrics_processed") is None for r in samples):
        failed.append("a metrics scrape failed")
    rep["cpu_by_stretch"] = cpu_by_stretch(samples)
    rep["tail_vs_cpu_per_frame_r"] = tail_follows_speed(rep["cpu_by_stretch"])
    rep["failed"], rep["ok"] = failed, not failed
    return rep


def cpu_by_stretch(samples: list[dict], minutes: float = 5.0) -> list[dict]:
    """Per stretch of ``minutes``: each process's CPU (% of one core), the machine's busy and stolen % (of all its
    cores), the pipeline's CPU milliseconds per processed frame and the median recent p99. When the tail rises with
    the machine's busy share but not with our processes', the load came from elsewhere; when every process needs more
    CPU for the same frames, the machine ran slower (a busy hyperthread sibling or a lower clock is not counted as
    stolen time)."""
    out = []
    rows = [s for s in samples if s.get("cpu_machine_s")]
    i = 0
    while i < len(rows) - 1:
        j = i
        while j + 1 < len(rows) and rows[j + 1]["t_s"] - rows[i]["t_s"] <= minutes * 60:
            j += 1
        if j == i:
            break
        a, b = rows[i], rows[j]
        dt = b["t_s"] - a["t_s"]
        m0, m1 = a["cpu_machine_s"], b["cpu_machine_s"]
        span = (m1["total"] - m0["total"]) or 1.0
        r = {"from_min": round(a["t_s"] / 60, 1), "to_min": round(b["t_s"] / 60, 1),
             "machine_busy_percent": round(100 * (m1["busy"] - m0["busy"]) / span, 1),
             "machine_steal_percent": round(100 * (m1["steal"] - m0["steal"]) / span, 1),
             "median_p99_ms": _median(rows[i:j + 1], "p99_recent_ms")}
        for p in ("pipeline", "overlay", "web", "browser", "soak"):
            if a.get(f"cpu_{p}_s") is not None and b.get(f"cpu_{p}_s") is not None:
                r[f"{p}_cpu_percent"] = round(100 * (b[f"cpu_{p}_s"] - a[f"cpu_{p}_s"]) / dt, 1)
        frames = (b.get("processed") or 0) - (a.get("processed") or 0)
        if frames > 0 and a.get("cpu_pipeline_s") is not None and b.get("cpu_pipeline_s") is not None:
            r["pipeline_cpu_ms_per_frame"] = round(1000 * (b["cpu_pipeline_s"] - a["cpu_pipeline_s"]) / frames, 2)
        out.append(r)
        i = j
    return out


def tail_follows_speed(stretches: list[dict]) -> float | None:
    """Pearson r between the stretches' pipeline CPU per frame and their median p99: near 1, the tail followed how
    fast the machine ran the same work, not a change in the work."""
    pts = [(c["pipeline_cpu_ms_per_frame"], c["median_p99_ms"]) for c in stretches
           if c.get("pipeline_cpu_ms_per_frame") is not None and c.get("median_p99_ms") is not None]
    if len(pts) < 3:
        return None
    try:
        return round(statistics.correlation([x for x, _ in pts], [y for _, y in pts]), 3)
    except statistics.StatisticsError:        # one of them constant
        return None


def markdown(r: dict) -> str:
    lines = ["| t (min) | RSS pipeline / overlay / web / browser (MB) | open files p / o / w | record MB | fps | "
             "dropped | over budget | p99 recent (ms) | browser frames acked |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = r.get("samples", [])
    step = max(1, len(rows) // 12)
    for s in rows[::step] + ([rows[-1]] if rows and (len(rows) - 1) % step else []):
        rss = " / ".join("–" if s.get(f"rss_{p}_mb") is None else f"{s[f'rss_{p}_mb']:.0f}" for p in PROCESSES)
        fds = " / ".join(str(s.get(f"fds_{p}")) for p in ("pipeline", "overlay", "web"))
        lines.append(f"| {s['t_s'] / 60:.1f} | {rss} | {fds} | {s['record_mb']} | {s['fps']} | {s['dropped']} "
                     f"| {s['budget_misses']} | {s['p99_recent_ms']} | {s.get('browser_acked')} |")
    lines.append(f"\nmemory growth (2nd quarter -> last, MB): {r.get('rss_growth_mb')}; slope after the first quarter "
                 f"(Theil-Sen, MB/h): {r.get('rss_slope_mb_per_h')}; open files: {r.get('fds_growth')}; "
                 f"tail: {r.get('tail')}; browser {r.get('browser_fps')} fps; "
                 f"{'OK' if r.get('ok') else 'FAILED: ' + '; '.join(r.get('failed', []))}")
    if r.get("cpu_by_stretch"):
        lines.append("\n| minutes | CPU % pipeline / overlay / web / browser / soak (of a core) | machine busy / stolen % "
                     "(of all cores) | pipeline CPU ms per frame | median p99 (ms) |\n"
                     "|---|---|---|---|---|")
        for c in r["cpu_by_stretch"]:
            lines.append(f"| {c['from_min']}–{c['to_min']} | {c.get('pipeline_cpu_percent')} / {c.get('overlay_cpu_percent')}"
                         f" / {c.get('web_cpu_percent')} / {c.get('browser_cpu_percent')} / {c.get('soak_cpu_percent')}"
                         f" | {c['machine_busy_percent']} / {c['machine_steal_percent']} "
                         f"| {c.get('pipeline_cpu_ms_per_frame')} | {c['median_p99_ms']} |")
        lines.append(f"\ntail vs the pipeline's CPU per frame, by stretch: r = {r.get('tail_vs_cpu_per_frame_r')}")
    return "\n".join(lines)


def slope_per_hour(rows: list[dict], key: str) -> float | None:
    """Theil-Sen slope of ``key`` against time, per hour: the median of the slopes between every two samples, so
    that one step (the allocator keeping one more frame-sized block) is not read as a trend, while a steady growth is."""
    pts = [(r["t_s"] / 3600, r[key]) for r in rows if r.get(key) is not None]
    slopes = [(v2 - v1) / (t2 - t1) for i, (t1, v1) in enumerate(pts) for t2, v2 in pts[i + 1:] if t2 > t1]
    return round(statistics.median(slopes), 2) if len(pts) >= 3 and slopes else None


def web_memory(samples: list[dict]) -> dict:
    """``tools/soak --web-alone``: the web server's memory and open files after the first quarter (warm-up), and
    the client still fed. Flat: growth from the 2nd quarter to the last within WEB_GROWTH_MB and the slope of the
    second half within WEB_SLOPE_MB_H."""
    if len(samples) < 8:
        return {"ok": False, "failed": ["too few samples"]}
    q = len(samples) // 4
    second, last, half = samples[q:2 * q], samples[-q:], samples[len(samples) // 2:]
    growth = round(_avg(last, "rss_web_mb") - _avg(second, "rss_web_mb"), 2)
    fds = round(_avg(last, "fds_web") - _avg(second, "fds_web"), 2)
    rep = {"rss_web_mb_first_last": [samples[0]["rss_web_mb"], samples[-1]["rss_web_mb"]],
           "rss_growth_mb": growth, "slope_mb_per_h_after_warmup": slope_per_hour(samples[q:], "rss_web_mb"),
           "slope_mb_per_h_second_half": slope_per_hour(half, "rss_web_mb"), "fds_growth": fds}
    failed = []
    if growth > WEB_GROWTH_MB:
        failed.append(f"web server memory grew {growth} MB")
    if (rep["slope_mb_per_h_second_half"] or 0) > WEB_SLOPE_MB_H:
        failed.append(f"web server memory still growing {rep['slope_mb_per_h_second_half']} MB/h")
    if fds >= 1:
        failed.append(f"web server open files grew by {fds}")
    if last[-1]["client_frames"] == last[0]["client_frames"]:
        failed.append("the client stopped receiving frames")
    rep["failed"], rep["ok"] = failed, not failed
    return rep
