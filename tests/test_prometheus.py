"""metrics.listen: the pipeline's health in the Prometheus text format, scraped by a real HTTP client over loopback
while a real pipeline runs; the counters move with the frames; off loopback only when asked for."""
from __future__ import annotations

import re
import threading
import time
import urllib.request

import pytest

from conftest import free_port
from engines.errors import ConfigError
from stream.config import load_config
from stream.pipeline import Pipeline


def scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.headers.get("Content-Type", ""), r.read().decode()


def value(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in the scrape")


def test_the_metrics_endpoint_is_scraped_and_its_counters_move_with_the_frames(clip, tiny_model, endpoint):
    port = free_port()
    cfg = load_config(None, [f"engine.model={tiny_model}", "engine.backend=onnxruntime", f"publisher.endpoint={endpoint}",
                             f"metrics.listen=127.0.0.1:{port}", "capture.pace=true"])
    pipe = Pipeline(cfg, source=str(clip))
    t = threading.Thread(target=pipe.run)
    t.start()
    url = f"http://127.0.0.1:{port}/metrics"
    first = None
    for _ in range(100):                                # the server comes up with the run
        try:
            ctype, first = scrape(url)
            if value(first, "polypwatch_frames_processed_total") > 0:
                break
        except (OSError, AssertionError):
            pass
        time.sleep(0.05)
    assert first is not None and ctype.startswith("text/plain")
    time.sleep(1.0)
    _, second = scrape(url)
    labels = {"model": "tiny-test", "precision": "fp32", "site": ""}
    n1, n2 = value(first, "polypwatch_frames_processed_total", **labels), value(second, "polypwatch_frames_processed_total")
    assert 0 < n1 < n2                                   # moving with the frames
    assert value(second, "polypwatch_state", state="running") == 1.0
    assert value(second, "polypwatch_state", state="no_signal") == 0.0
    count = value(second, "polypwatch_stage_seconds_count", stage="infer")
    assert count >= n2 - 1 and value(second, "polypwatch_stage_seconds_bucket", stage="infer", le="+Inf") == count
    assert re.search(r'^polypwatch_capture_to_seconds_bucket\{.*stage="publish".*\} \d', second, re.M)
    t.join(30)
    s = pipe.summary()
    assert "alert_episodes" in s
    with pytest.raises(OSError):                          # gone with the run
        scrape(url)


@pytest.mark.parametrize("sets, message", [
    (["metrics.listen=0.0.0.0:9464"], "is not a loopback address; set metrics.allow_non_loopback: true"),
    (["metrics.listen=9464"], "metrics.listen: expected HOST:PORT"),
])
def test_metrics_config_is_checked_at_load(sets, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, sets)
    if "0.0.0.0" in sets[0]:
        assert load_config(None, [*sets, "metrics.allow_non_loopback=true"]).metrics.listen == "0.0.0.0:9464"
