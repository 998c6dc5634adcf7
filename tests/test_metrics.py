import numpy as np
import pytest

from engines.lab.evaluation.metrics import auroc, box_iou, sens_spec, threshold_for_specificity
from stream.latency import percentiles_ms


@pytest.mark.parametrize("labels, scores, expected", [
    ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),
    ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),
    ([0, 1], [0.5, 0.5], 0.5),
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
    ([1, 1], [0.1, 0.2], None),
])
def test_auroc(labels, scores, expected):
    assert auroc(np.array(labels), np.array(scores)) == expected


def test_threshold_for_specificity_gives_at_least_that_specificity():
    neg = np.linspace(0, 1, 101)
    t = threshold_for_specificity(neg, 0.95)
    assert (neg < t).mean() >= 0.95
    assert (neg < np.nextafter(t, -1)).mean() < 0.96


def test_sens_spec_and_iou_and_percentiles():
    assert sens_spec([1, 1, 0, 0], [1, 0, 0, 1]) == (0.5, 0.5)
    assert box_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert box_iou((0, 0, 0.5, 1), (0.5, 0, 1, 1)) == 0.0
    assert box_iou((0, 0, 1, 1), (0, 0, 0.5, 1)) == 0.5
    p = percentiles_ms([1_000_000] * 99 + [10_000_000])
    assert (p["p50"], p["max"], p["count"]) == (1.0, 10.0, 100)


def test_p99_9_and_fps_over_the_processing_interval(monkeypatch):
    p = percentiles_ms([1_000_000] * 999 + [50_000_000])
    assert p["p99"] == 1.0 and 1.0 < p["p99_9"] < 50.0 and p["max"] == 50.0
    import stream.stats as stats
    from stream.detection import AlertState, Detection
    monkeypatch.setattr(stats.time, "monotonic_ns", lambda: 0)
    rs = stats.RunStats(33.0)                               # created at t=0 ...
    times = iter([5 * 10**9 + t for t in range(0, 10**12, 20_000_000)])  # ... first frame 5 s later (start-up)
    monkeypatch.setattr(stats.time, "monotonic_ns", lambda: next(times))
    for i in range(101):
        rs.add(Detection(seq=i, t_capture_ns=0, source="s", score=0.1, alert=AlertState.OFF))
    s = rs.summary()
    assert s["fps"] == 50.0 and s["processing_seconds"] == 2.0       # 100 intervals of 20 ms; start-up excluded


def test_each_sequence_is_scored_against_every_negative_of_the_set():
    from pathlib import Path

    from engines.lab.data.datasets import Sample
    from engines.lab.evaluation.evaluate import FrameScore, summarise
    from engines.lab.evaluation.protocol import table

    def fs(group, label, score):
        return FrameScore(Sample(Path(f"{group}-{score}.png"), label, None, group, "cvc"), label, score, score, None)
    negs = [fs("n", 0, v) for v in np.linspace(0.0, 0.5, 20)]
    easy = [fs("3", 1, v) for v in (0.8, 0.9, 0.95)]           # above every negative
    hard = [fs("13", 1, v) for v in (0.1, 0.3, 0.6)]          # among the negatives
    m = summarise(negs + easy + hard, threshold=0.55)
    assert m["sequences"]["cvc/3"] == {"frames": 3, "detected_frames": 3, "detected": True, "auroc": 1.0,
                                      "sensitivity_at_95_specificity": 1.0}
    h = m["sequences"]["cvc/13"]
    assert (h["detected_frames"], h["sensitivity_at_95_specificity"]) == (1, pytest.approx(1 / 3, abs=1e-4))
    assert h["auroc"] == pytest.approx(np.mean([(np.linspace(0, 0.5, 20) < v).mean() for v in (0.1, 0.3, 0.6)]),
                                       abs=0.01)
    assert "cvc/n" not in m["sequences"]                       # negatives make no sequence of their own
    neg = {"count": 0, "specificity": None, "score_p50": None, "score_p95": None, "score_max": None}
    text = table({"sources": {"cvc": m}, "unseen_normals": neg, "tower_test": neg, "synthetic_negatives": neg})
    assert "| cvc/13 | 3 | 1 | 0.600 / 0.333 |" in text


def test_the_run_latency_histogram_is_within_one_percent_in_constant_memory():
    from stream.latency import LATENCY_BUCKETS_S, LatencyHistogram
    rng = np.random.default_rng(3)
    v = rng.lognormal(np.log(15e6), 0.4, 50_000).astype(np.int64)
    h = LatencyHistogram()
    size = len(h.bins)
    for x in v.tolist():
        h.add(x)
    exact, approx = percentiles_ms(v), h.percentiles_ms()
    assert len(h.bins) == size and approx["count"] == len(v) and approx["max"] == exact["max"]
    for k in ("p50", "p95", "p99", "p99_9"):
        assert abs(approx[k] - exact[k]) <= 0.011 * exact[k], (k, approx[k], exact[k])
    assert h.buckets() == [(b, int((v <= round(b * 1e9)).sum())) for b in LATENCY_BUCKETS_S]
    assert h.sum_ns == int(v.sum())


def test_the_soak_verdict_sees_memory_files_and_the_tail_grow():
    from stream.lab.bench.soak_report import summarise

    def samples(rss=lambda i: 200.0, fds=lambda i: 20, p99=lambda i: 25.0):
        return [{"t_s": 10.0 * i, "rss_pipeline_mb": rss(i), "rss_overlay_mb": 90.0, "rss_web_mb": 400.0,
                 "rss_browser_mb": 900.0, "fds_pipeline": fds(i), "fds_overlay": 10, "fds_web": 17,
                 "p99_recent_ms": p99(i), "processed": 300 * i, "dropped": 0, "budget_misses": 0, "record": "ok",
                 "browser_sent": 250 * i, "browser_acked": 250 * i, "browser_dropped": 0, "record_mb": 0.1 * i,
                 "metrics_processed": 300.0 * i} for i in range(40)]
    assert summarise(samples(), 33.3)["ok"]
    assert summarise(samples(rss=lambda i: 200.0 + 2 * i), 33.3)["failed"] == ["pipeline memory grew 40.0 MB"]
    assert summarise(samples(fds=lambda i: 20 + i // 10), 33.3)["failed"] == ["pipeline open files grew by 2.0"]
    assert summarise(samples(p99=lambda i: 25.0 + i / 4), 33.3)["failed"] == ["the latency tail grew"]
    stalled = samples()
    for s in stalled[30:]:
        s["browser_acked"] = stalled[30]["browser_acked"]
    assert "the browser client stopped receiving frames" in summarise(stalled, 33.3)["failed"]
    assert summarise(samples()[:5], 33.3)["failed"] == ["too few samples"]


def test_bench_runs_compared_rows_in_turns_and_reports_the_median_of_the_turns_ratios():
    """tools/bench: the record+metrics row and its "off" row run in turns; the target is the median turn ratio."""
    from stream.lab.bench.cli import groups, run_groups
    from stream.lab.bench.report import targets
    from stream.lab.bench.scenarios import Row

    assert groups(["live_1080p30", "decode_1080p30", "live_1080p30_record_metrics"]) == [
        ("live_1080p30", "live_1080p30_record_metrics"), ("decode_1080p30",)]
    assert groups(["live_1080p30_record_metrics"]) == [("live_1080p30_record_metrics",)]
    order = []
    p99 = {"off": [15.0, 18.0, 15.5], "on": [15.3, 18.5, 17.0]}       # drift: turn 2 is slow for both

    def scenario(kind):
        def fn(k):
            order.append((kind, k))
            return Row("", "clip", {"capture_to_publish_ms": {"p50": 10.0, "p99": p99[kind][k]}},
                       [{"cpu_percent": 50.0, "peak_rss_mb": 200.0}])
        return fn
    rows = run_groups({"live_1080p30": scenario("off"), "live_1080p30_record_metrics": scenario("on")},
                      ["live_1080p30", "live_1080p30_record_metrics"], 3)
    assert order == [("off", 0), ("on", 0), ("off", 1), ("on", 1), ("off", 2), ("on", 2)]
    paired = rows["live_1080p30_record_metrics"].figures["paired_ratio"]
    assert paired["p99_each"] == [1.02, 1.028, 1.097] and paired["p99"] == 1.028 and paired["turns"] == 3
    lines = [t for t in targets(rows) if "record and metrics" in t]
    assert len(lines) == 2 and lines[1].endswith("met") and "median of 3 turns" in lines[1]
    p99["on"] = [16.0, 19.0, 17.0]
    rows = run_groups({"live_1080p30": scenario("off"), "live_1080p30_record_metrics": scenario("on")},
                      ["live_1080p30", "live_1080p30_record_metrics"], 3)
    assert [t for t in targets(rows) if "p99 within 5%" in t][0].endswith("MISSED")


def test_the_web_alone_soak_says_whether_the_servers_memory_is_flat():
    from stream.lab.bench.soak_report import web_memory

    def samples(rss=lambda i: 409.5, fds=lambda i: 16, frames=lambda i: 300 * i):
        return [{"t_s": 10.0 * i, "rss_web_mb": rss(i), "fds_web": fds(i), "client_frames": frames(i)}
                for i in range(72)]
    assert web_memory(samples())["ok"]
    assert web_memory(samples(rss=lambda i: 409.5 + (2.6 if i > 60 else 0)))["ok"]        # one step, not a slope
    grew = web_memory(samples(rss=lambda i: 409.0 + 0.25 * i))                                # 90 MB/h
    assert not grew["ok"] and grew["slope_mb_per_h_after_warmup"] == 90.0
    assert any(f.startswith("web server memory grew") for f in grew["failed"])
    assert web_memory(samples(fds=lambda i: 16 + i // 30))["failed"] == ["web server open files grew by 1.33"]
    assert web_memory(samples(frames=lambda i: min(i, 40) * 300))["failed"] == ["the client stopped receiving frames"]
    assert web_memory(samples()[:5])["failed"] == ["too few samples"]


def test_the_soak_tells_our_cpu_from_the_machines():
    """A slower stretch: did our processes use more CPU, or did the machine have less to give?"""
    from stream.lab.bench.soak_report import cpu_by_stretch

    def sample(i):
        # the machine busy 60% of its 2 cores, 90% from minute 5 (someone else); our processes the same throughout
        return {"t_s": 10.0 * i, "p99_recent_ms": 12.0 if i < 30 else 20.0, "cpu_pipeline_s": 0.7 * 10 * i,
                "cpu_overlay_s": 0.1 * 10 * i, "cpu_web_s": 0.2 * 10 * i,
                "cpu_machine_s": {"busy": sum(2 * 10 * (60.0 if k < 30 else 90.0) / 100 for k in range(i)),
                                  "steal": 0.0, "total": 2 * 10.0 * i}}
    rows = cpu_by_stretch([sample(i) for i in range(61)])
    assert [(r["from_min"], r["to_min"]) for r in rows] == [(0.0, 5.0), (5.0, 10.0)]
    assert rows[0]["pipeline_cpu_percent"] == 70.0 and rows[1]["pipeline_cpu_percent"] == 70.0
    assert rows[0]["machine_busy_percent"] == 60.0 and rows[1]["machine_busy_percent"] == 90.0
    assert rows[0]["median_p99_ms"] == 12.0 and rows[1]["median_p99_ms"] == 20.0
    assert cpu_by_stretch([{"t_s": 0.0}]) == []


def test_the_soak_tells_a_slower_machine_from_more_work():
    """The same 30 frames a second cost 12 ms of CPU each, then 16 ms (the machine slower), and the tail follows:
    the report gives the CPU per frame by stretch and how closely the tail followed it."""
    from stream.lab.bench.soak_report import cpu_by_stretch, tail_follows_speed

    def ms_per_frame(k):
        return 12.0 if (k // 30) % 2 == 0 else 16.0        # 5-minute stretches, alternately fast and slow

    def sample(i):
        cpu = sum(30 * 10 * ms_per_frame(k) / 1000 for k in range(i))
        return {"t_s": 10.0 * i, "processed": 300 * i, "cpu_pipeline_s": cpu, "p99_recent_ms": ms_per_frame(max(i - 1, 0)) + 2,
                "cpu_machine_s": {"busy": 10.0 * i, "steal": 0.0, "total": 20.0 * i}}
    rows = cpu_by_stretch([sample(i) for i in range(121)])
    assert [r["pipeline_cpu_ms_per_frame"] for r in rows] == [12.0, 16.0, 12.0, 16.0]
    assert tail_follows_speed(rows) > 0.9
    flat = [{**r, "pipeline_cpu_ms_per_frame": 12.0} for r in rows]      # the same speed throughout: r undefined
    assert tail_follows_speed(flat) is None
    assert tail_follows_speed(rows[:2]) is None
