"""The pipeline's health in the Prometheus text format, for a hospital's monitoring (``metrics.listen``, off by
default, loopback unless configured). Served by the ecosystem's own client library (prometheus_client) from its own
thread; every figure is read from the run's statistics when a scrape comes, so the per-frame path does no extra work.
A scrape is Python that holds the interpreter lock (about 1.5 ms in all): it lets go of it before each family
(``_yield_lock``), so that a frame waiting for the lock waits for one family's formatting, not the whole scrape's.

Every family carries the labels ``model``, ``precision`` and ``site`` (the site a model was adapted to, '' for a
shipped model). Names and meanings: docs/SECURITY.md ("Metrics").
"""
from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from stream.endpoints import parse_listen
from stream.latency import LatencyHistogram
from stream.wire import STATES

log = logging.getLogger(__name__)
LABELS = ("model", "precision", "site")


def _histogram(name: str, doc: str, labels: tuple[str, ...], hists: dict[str, LatencyHistogram],
               key_label: str, base: list[str]) -> HistogramMetricFamily:
    h = HistogramMetricFamily(name, doc, labels=[*labels, key_label])
    for key, hist in hists.items():
        count, total_ns = hist.count, hist.sum_ns       # read first: the pipeline thread may add while we read
        buckets = [(repr(b), min(int(c), count)) for b, c in hist.buckets()] + [("+Inf", count)]
        h.add_metric([*base, key], buckets, total_ns / 1e9)
    return h


def _yield_lock() -> None:
    """Let go of the interpreter lock for a moment (time.sleep releases it, even for 0 s): a pipeline thread that
    waits for it takes it here."""
    time.sleep(0)


class PipelineCollector(Collector):
    """Reads a Pipeline's statistics at scrape time."""

    def __init__(self, pipe):
        self.pipe = pipe
        meta = pipe.detector.meta
        self.base = [meta.model_id, pipe.detector.precision.precision,
                     str(meta.training.get("site_adaptation", {}).get("site", ""))]

    def collect(self):
        p, base = self.pipe, self.base
        st, rs = p.stats, p.reader.stats()

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            _yield_lock()
            c = CounterMetricFamily(name, doc, labels=LABELS)
            c.add_metric(base, value)
            return c
        yield counter("polypwatch_frames_read", "frames the capture delivered", rs.read)
        yield counter("polypwatch_frames_processed", "frames run through the detector", st.processed)
        yield counter("polypwatch_frames_dropped", "frames dropped to keep the newest (and skipped by the source)",
                      rs.dropped + rs.skipped)
        yield counter("polypwatch_budget_misses", "frames over the capture-to-publish budget", st.budget_misses)
        yield counter("polypwatch_engine_errors", "frames the engine failed on", st.errors)
        yield counter("polypwatch_alert_episodes", "alert episodes (the live filter turning on)", st.alert_episodes)
        _yield_lock()
        state = GaugeMetricFamily("polypwatch_state", "1 for the pipeline's state now (running, no_signal, error, ...)",
                                  labels=[*LABELS, "state"])
        for s in STATES:
            state.add_metric([*base, s], 1.0 if p.state == s else 0.0)
        yield state
        _yield_lock()
        fps = GaugeMetricFamily("polypwatch_fps", "processed frames per second, recent", labels=LABELS)
        fps.add_metric(base, st.recent_fps())
        yield fps
        _yield_lock()
        budget = GaugeMetricFamily("polypwatch_budget_seconds", "the capture-to-publish budget", labels=LABELS)
        budget.add_metric(base, st.budget_ns / 1e9)
        yield budget
        _yield_lock()
        yield _histogram("polypwatch_stage_seconds", "time spent in each stage of a frame", LABELS,
                         dict(st.stage), "stage", base)
        _yield_lock()
        yield _histogram("polypwatch_capture_to_seconds", "time from capture to the end of each stage", LABELS,
                         dict(st.all), "stage", base)


class MetricsServer:
    """``with MetricsServer(cfg.metrics, pipe):`` serves /metrics while the pipeline runs."""

    def __init__(self, cfg, pipe):
        self.host, self.port = parse_listen("metrics.listen", cfg.listen)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(PipelineCollector(pipe))
        self._server = None

    def __enter__(self) -> "MetricsServer":
        try:
            self._server, _thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as e:
            from engines.errors import ConfigError
            raise ConfigError(f"metrics.listen: cannot serve on {self.host}:{self.port} ({e.strerror})") from None
        self.port = self._server.server_port
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
