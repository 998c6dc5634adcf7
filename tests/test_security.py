"""CURVE between polypwatch run and polypwatch overlay on loopback; loopback binding; no pickle/eval/shell."""
import re
import shutil
import threading
import time

import pytest
from conftest import ROOT, run_cli

import stream.overlay.config  # noqa: F401
from engines.errors import ConfigError
from stream.config import load_config
from stream.overlay.app import Overlay
from stream.pipeline import Pipeline


@pytest.fixture
def keys(tmp_path):
    for name in ("pipeline", "overlay", "intruder"):
        r = run_cli("keys", "--out", str(tmp_path / "keys"), "--name", name)
        assert r.returncode == 0, r.stderr
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(tmp_path / "keys" / "overlay.key", allowed / "overlay.key")
    assert oct((tmp_path / "keys" / "overlay.key_secret").stat().st_mode)[-3:] == "600"
    return tmp_path / "keys", allowed


def _run(keys, endpoint, tiny_model, client):
    k, allowed = keys
    cfg = load_config(None, [f"engine.model={tiny_model}", f"publisher.endpoint={endpoint}",
                             "capture.pace=true", "pipeline.max_seconds=4",
                             f"publisher.curve_secret_key={k / 'pipeline.key_secret'}",
                             f"publisher.curve_allowed_clients={allowed}",
                             f"overlay.endpoint={endpoint}", f"overlay.curve_secret_key={k / (client + '.key_secret')}",
                             f"overlay.curve_server_key={k / 'pipeline.key'}", "overlay.max_seconds=5"])
    pipe = Pipeline(cfg, source="synthetic://seed=2&size=320x240&fps=25&seconds=30")
    ov = Overlay(cfg.extra["overlay"])
    th = threading.Thread(target=ov.run)
    th.start()
    pipe.run()
    th.join(15)
    return ov.summary()


def test_allowed_client_receives_detections(keys, endpoint, tiny_model):
    s = _run(keys, endpoint, tiny_model, "overlay")
    assert s["messages"] > 50 and s["frames_drawn"] == 0     # detections and status only (no frames topic)


def test_unknown_client_receives_nothing(keys, endpoint, tiny_model):
    s = _run(keys, endpoint, tiny_model, "intruder")
    assert s["messages"] == 0


def test_curve_config_errors(tmp_path, keys, tiny_model):
    k, allowed = keys
    m = f"engine.model={tiny_model}"
    with pytest.raises(ConfigError, match="publisher.curve_allowed_clients: expected a folder"):
        Pipeline(load_config(None, [m, f"publisher.curve_secret_key={k / 'pipeline.key_secret'}",
                                    "publisher.endpoint=tcp://127.0.0.1:*"]), source="synthetic://seed=1")
    with pytest.raises(ConfigError, match="holds no secret key"):
        Pipeline(load_config(None, [m, f"publisher.curve_secret_key={k / 'pipeline.key'}",
                                    f"publisher.curve_allowed_clients={allowed}",
                                    "publisher.endpoint=tcp://127.0.0.1:*"]), source="synthetic://seed=1")
    with pytest.raises(ConfigError, match="overlay.curve_server_key: expected both"):
        load_config(None, [f"overlay.curve_secret_key={k / 'overlay.key_secret'}"])


def test_no_pickle_eval_or_shell_in_the_code():
    for path in list((ROOT / "stream").rglob("*.py")) + list((ROOT / "engines").rglob("*.py")):
        src = path.read_text()
        assert not re.search(r"^\s*import pickle|\bpickle\.loads|(?<![.\w])eval\(|(?<![.\w])exec\(|shell=True|os\.system\(", src, re.M), path


def test_curve_between_the_run_and_overlay_commands(keys, tiny_model, tmp_path):
    """The real commands as separate processes: the allowed overlay hears the pipeline, an intruder nothing."""
    import json
    import subprocess
    import sys

    from conftest import free_port
    k, allowed = keys
    ep = f"tcp://127.0.0.1:{free_port()}"

    def overlay(name):
        return subprocess.Popen([sys.executable, "-m", "stream", "overlay", "--summary-json", str(tmp_path / f"{name}.json"),
                                 "--set", f"overlay.endpoint={ep}", "--set", f"overlay.curve_secret_key={k / (name + '.key_secret')}",
                                 "--set", f"overlay.curve_server_key={k / 'pipeline.key'}", "--set", "overlay.max_seconds=120"],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    good, bad = overlay("overlay"), overlay("intruder")
    run = run_cli("run", "--source", "synthetic://seed=2&size=320x240&fps=25&seconds=5",
                  "--set", f"engine.model={tiny_model}", "--set", f"publisher.endpoint={ep}",
                  "--set", f"publisher.curve_secret_key={k / 'pipeline.key_secret'}",
                  "--set", f"publisher.curve_allowed_clients={allowed}", "--set", "publisher.send_frames=true")
    assert run.returncode == 0, run.stderr
    # the overlays stop on SIGTERM once the pipeline is done (as a service manager stops them), not on a clock that a
    # slow start of the pipeline under load could outrun; they write their summaries on the way out
    time.sleep(0.5)
    for p in (good, bad):
        p.terminate()
    assert good.wait(30) == 0 and bad.wait(30) == 0
    g = json.loads((tmp_path / "overlay.json").read_text())
    b = json.loads((tmp_path / "intruder.json").read_text())
    assert g["frames_drawn"] > 20 and g["displays"].get("ACTIVE", 0) > 0
    assert b["messages"] == 0 and b["frames_drawn"] == 0
