"""The pipeline's health in the Prometheus text format, for a hospital's monitoring (``metrics.listen``, off by
default, loopback unless configured). Served by the ecosystem's own client library (prometheus_client) from its own
thread; every figure is read from the run's statistics when a scrape comes, so the per-frame path does no extra work.

Every family carries the labels ``model``, ``precision`` and ``site`` (the site a model was adapted to, '' for a
shipped model). Names and meanings: docs/SECURITY.md ("Metrics").
"""
from __future__ import annotations

import logging

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from stream.endpoints import parse_listen
from stream.wire import STATES

log = logging.getLogger(__name__)
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.033, 0.05, 0.1, 0.25, 1.0)
LABELS = ("model", "precision", "site")


def _histogram(name: str, doc: str, labels: tuple[str, ...], values_ns_by_key: dict[str, np.ndarray],
               key_label: str, base: list[str]) -> HistogramMetricFamily:
    h = HistogramMetricFamily(name, doc, labels=[*labels, key_label])
    for key, ns in values_ns_by_key.items():
        s = ns / 1e9
        counts = np.searchsorted(np.sort(s), LATENCY_BUCKETS_S, side="right") if len(s) else [0] * len(LATENCY_BUCKETS_S)
        buckets = [(repr(b), int(c)) for b, c in zip(LATENCY_BUCKETS_S, counts)] + [("+Inf", int(len(s)))]
        h.add_metric([*base, key], buckets, float(s.sum()))
    return h


def _copy(values) -> np.ndarray:
    """A copy of a growing array('q') of nanoseconds: the pipeline thread appends to it while a scrape reads, and an
    array whose buffer is exported cannot grow (the slice is copied under the GIL; only the copy is exported)."""
    return np.frombuffer(values[:], np.int64)


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
        state = GaugeMetricFamily("polypwatch_state", "1 for the pipeline's state now (running, no_signal, error, ...)",
                                  labels=[*LABELS, "state"])
        for s in STATES:
            state.add_metric([*base, s], 1.0 if p.state == s else 0.0)
        yield state
        fps = GaugeMetricFamily("polypwatch_fps", "processed frames per second, recent", labels=LABELS)
        fps.add_metric(base, st.recent_fps())
        yield fps
        budget = GaugeMetricFamily("polypwatch_budget_seconds", "the capture-to-publish budget", labels=LABELS)
        budget.add_metric(base, st.budget_ns / 1e9)
        yield budget
        yield _histogram("polypwatch_stage_seconds", "time spent in each stage of a frame", LABELS,
                         {k: _copy(v) for k, v in st.stage.items()}, "stage", base)
        yield _histogram("polypwatch_capture_to_seconds", "time from capture to the end of each stage", LABELS,
                         {k: _copy(v) for k, v in st.all.items()}, "stage", base)


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
