from pathlib import Path

import pytest

from engines.errors import ConfigError
from stream.config import load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    import stream.web.config  # noqa: F401  (the web: and overlay: sections, as every polypwatch command has them)
    cfg = load_config(path)
    assert cfg.publisher.endpoint.startswith("tcp://127.0.0.1")


def test_defaults_file_matches_code_defaults():
    assert load_config(ROOT / "configs" / "default.yaml") == load_config(None)


def test_override_applies():
    cfg = load_config(None, ["alerts.window=8", "capture.pace=false", "engine.model=/x.onnx"])
    assert (cfg.alerts.window, cfg.capture.pace, cfg.engine.model) == (8, False, "/x.onnx")


@pytest.mark.parametrize("override, message", [
    ("alerts.windw=3", r"alerts.windw: unknown key \(did you mean 'window'\?\)"),
    ("alerts.window=abc", r"alerts.window: expected an integer, got 'abc'"),
    ("alerts.window=0", r"alerts.window: expected a value in 1..1000, got 0"),
    ("alerts.min_hits=9", r"alerts.min_hits: expected at most alerts.window \(5\), got 9"),
    ("alerts.off_threshold=0.9", None),
    ("engine.backend=foo", r"engine.backend: expected one of \['auto', 'onnxruntime', 'torch', 'tensorrt'\], got 'foo'"),
    ("capture.pace=3", r"capture.pace: expected true or false, got 3"),
    ("pipeline.budget_ms=-1", r"pipeline.budget_ms: expected a value in 1..10000, got -1.0"),
    ("publisher.endpoint=tcp://0.0.0.0:5560", r"not a loopback address; set allow_non_loopback"),
    ("publisher.endpoint=http://x", r"publisher.endpoint: expected tcp://HOST:PORT"),
    ("captur.source=x", r"unknown section 'captur' \(did you mean 'capture'\?\)"),
    ("nonsense", r"expected section.key=value"),
])
def test_bad_overrides_name_key_value_and_expectation(override, message):
    if message is None:      # off above on (0.9 > default on of 0 -> taken from the model): allowed
        load_config(None, [override])
        return
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_off_threshold_above_on_is_refused():
    with pytest.raises(ConfigError, match=r"alerts.off_threshold: expected at most alerts.on_threshold \(0.5\), got 0.6"):
        load_config(None, ["alerts.on_threshold=0.5", "alerts.off_threshold=0.6"])


def test_non_loopback_allowed_when_asked():
    cfg = load_config(None, ["publisher.endpoint=tcp://0.0.0.0:5560", "publisher.allow_non_loopback=true"])
    assert cfg.publisher.endpoint == "tcp://0.0.0.0:5560"


@pytest.mark.parametrize("text, message", [
    ("capture: [1, 2]\n", r"capture: expected a mapping of keys"),
    ("- a\n- b\n", r"expected a mapping of sections, got list"),
    ("capture: {source: 'a'\n", r"not valid YAML"),
    ("engines: {}\n", r"engines: unknown section \(did you mean 'engine'\?\)"),
])
def test_bad_files(tmp_path, text, message):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(p)


def test_missing_file():
    with pytest.raises(ConfigError, match=r"config /nonexistent.yaml: cannot read"):
        load_config("/nonexistent.yaml")


@pytest.mark.parametrize("override, message", [
    ("pipeline.detections_log=/nonexistent/dir/d.jsonl", r"pipeline.detections_log: folder '/nonexistent/dir' does not exist"),
    ("pipeline.detections_log=/tmp", r"pipeline.detections_log: expected a file path, got '/tmp'"),
    ("overlay.output=/nonexistent/a.mp4", r"overlay.output: folder '/nonexistent' does not exist"),
    ("overlay.latency_log=/nonexistent/l.jsonl", r"overlay.latency_log: folder '/nonexistent' does not exist"),
])
def test_output_paths_are_checked_at_load(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])
