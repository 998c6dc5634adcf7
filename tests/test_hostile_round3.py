"""Careless and hostile input, round three (issue 47; docs/RELIABILITY.md, docs/SECURITY.md): each case with the
hostile input itself. Nothing of the user's deleted or overwritten; one bad message never takes the tower down."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli


def _tree(p: Path) -> dict[str, bytes]:
    return {str(q.relative_to(p)): (q.read_bytes() if q.is_file() else b"<dir>") for q in sorted(p.rglob("*"))}


# ------------------------------------------------------------------ 1. replay into its own earlier --out
def test_a_replay_into_its_earlier_out_keeps_what_the_user_added_and_refuses_an_input_inside(clip, tiny_model,
                                                                                          tmp_path):
    out = tmp_path / "Q"
    model = ["--no-video", "--set", f"engine.model={tiny_model}"]
    assert run_cli("replay", str(clip), "--out", str(out), *model).returncode == 0
    (out / "input.avi").write_bytes(clip.read_bytes())
    (out / "signoff.txt").write_text("sign-off")
    (out / "mine").mkdir()
    (out / "mine" / "notes.md").write_text("mine")
    r = run_cli("replay", str(out / "input.avi"), "--out", str(out), *model)         # the exact case
    assert r.returncode == 2 and "lies inside the output folder" in r.stderr, r.stderr
    assert (out / "input.avi").read_bytes() == clip.read_bytes() and (out / "signoff.txt").read_text() == "sign-off"
    before = (out / "metrics.json").read_bytes()
    r = run_cli("replay", str(clip), "--out", str(out), *model)                       # a re-run from outside
    assert r.returncode == 0, r.stderr
    assert (out / "input.avi").read_bytes() == clip.read_bytes() and (out / "signoff.txt").read_text() == "sign-off"
    assert (out / "mine" / "notes.md").read_text() == "mine" and (out / "metrics.json").read_bytes() != b""
    manifest = json.loads((out / ".polypwatch-output").read_text())["files"]
    assert set(manifest) == {"detections.jsonl", "metrics.json", "report.html"} and before
    r = run_cli("replay", str(clip), "--out", "/", *model)
    assert r.returncode == 2 and "root folder is never an output folder" in r.stderr


# ------------------------------------------------------------------ 2. adapt: every file it writes, never over a user's
@pytest.mark.parametrize("name", ["ward3.pt", "ward3.int8.onnx", "ward3.commission.json", "ward3.commission.html"])
def test_adapt_refuses_before_any_work_when_any_file_it_would_write_exists(tmp_path, name, clip):
    user = tmp_path / name
    user.write_text("the user's own file")
    r = run_cli("adapt", "--polyp-free", str(clip), str(clip), "--site", "ward3", "--out", str(tmp_path / "ward3.onnx"))
    assert r.returncode == 2 and f"{user} exists and a commissioning run would overwrite it" in r.stderr, r.stderr
    assert user.read_text() == "the user's own file" and not (tmp_path / "ward3.onnx").exists()
    r = run_cli("adapt", "--polyp-free", str(clip), str(clip), "--site", "ward3", "--replace",
                "--out", str(tmp_path / "ward3.onnx"))
    assert r.returncode == 2 and "--replace overwrites only what an earlier run" in r.stderr, r.stderr
    assert user.read_text() == "the user's own file"


def test_adapt_never_writes_over_its_footage_or_model(tmp_path, shipped_model):
    from engines.errors import ConfigError
    from engines.lab.site.adapt import check_out
    footage = tmp_path / "ward3.commission.json"
    footage.write_text("not really footage, but named like an output")
    with pytest.raises(ConfigError, match="which is an input \\(footage\\)"):
        check_out(tmp_path / "ward3.onnx", shipped_model, False, [str(footage)])
    with pytest.raises(ConfigError, match="which is the model being commissioned"):
        check_out(tmp_path / "m.onnx", tmp_path / "m.onnx", False)


# ------------------------------------------------------------------ 4. an output path equal to an input
@pytest.mark.parametrize("option", [("--set", "pipeline.detections_log={v}"), ("--summary-json", "{v}")])
def test_an_output_that_is_the_source_video_is_refused_and_the_video_kept(clip, tiny_model, tmp_path, option):
    v = tmp_path / "v.mp4"
    v.write_bytes(clip.read_bytes())
    r = run_cli("run", "--source", str(v), "--set", "capture.pace=false", "--set", f"engine.model={tiny_model}",
                option[0], option[1].format(v=v))
    assert r.returncode == 2 and "is the source this run reads" in r.stderr, r.stderr
    assert v.read_bytes() == clip.read_bytes()


def test_an_output_over_a_file_of_another_kind_or_the_model_is_refused(clip, tiny_model, tmp_path):
    thesis = tmp_path / "thesis.txt"
    thesis.write_text("three years of work")
    r = run_cli("run", "--source", str(clip), "--set", "capture.pace=false", "--set", f"engine.model={tiny_model}",
                "--set", f"pipeline.detections_log={thesis}")
    assert r.returncode == 2 and "exists and is not a JSON-lines log polypwatch wrote" in r.stderr, r.stderr
    r = run_cli("run", "--source", str(clip), "--set", "capture.pace=false", "--set", f"engine.model={tiny_model}",
                "--summary-json", str(tiny_model))
    assert r.returncode == 2 and "is the model this run reads" in r.stderr, r.stderr
    assert thesis.read_text() == "three years of work"
    log = tmp_path / "det.jsonl"                        # its own earlier log may be replaced (make demo, again)
    for _ in range(2):
        r = run_cli("run", "--source", str(clip), "--set", "capture.pace=false", "--set", f"engine.model={tiny_model}",
                    "--set", f"pipeline.detections_log={log}", "--set", "pipeline.max_frames=5")
        assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ 5. keys never replaces a deployed pair
def test_keys_refuses_to_replace_an_existing_pair(tmp_path):
    r = run_cli("keys", "--out", str(tmp_path), "--name", "pipeline")
    assert r.returncode == 0, r.stderr
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = run_cli("keys", "--out", str(tmp_path), "--name", "pipeline")
    assert r.returncode == 2 and "pipeline.key exists; a deployed key pair is never replaced" in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    (tmp_path / "pipeline.key").unlink()                       # the secret alone left: still refused
    r = run_cli("keys", "--out", str(tmp_path), "--name", "pipeline")
    assert r.returncode == 2 and "pipeline.key_secret exists" in r.stderr
    assert (tmp_path / "pipeline.key_secret").read_bytes() == before["pipeline.key_secret"]


# ------------------------------------------------------------------ 6. one malformed message never takes the tower down
def _frame_header(**kw) -> bytes:
    h = {"v": 1, "seq": 1, "t_capture_ns": 1, "source": "s", "frame_index": 0, "encoding": "raw", "dtype": "uint8",
         "shape": [2, 2, 3], **kw}
    return json.dumps(h).encode()


def _det_header(**kw) -> bytes:
    h = {"v": 1, "seq": 1, "frame_index": 0, "t_capture_ns": 1, "source": "s", "score": 0.5, "alert": "off",
         "boxes": [], "model_id": "m", "times_ns": {}, "error": "", **kw}
    return json.dumps(h).encode()


HOSTILE = [
    [b"frame", _frame_header(frame_index="x"), b"\0" * 12],
    [b"frame", _frame_header(frame_index=None), b"\0" * 12],
    [b"frame", _frame_header(frame_index=10 ** 30), b"\0" * 12],
    [b"det", _det_header(frame_index="x")],
    [b"det", _det_header().replace(b'"frame_index": 0', b'"frame_index": 1e999')],
    [b"det", b'{"v": 1, "x": ' + b"[" * 20000 + b"]" * 20000 + b"}"],
    [b"det", _det_header(error=["not", "text"])],
    [b"det", _det_header(boxes=[[0.1, 0.1, 0.2, 0.2, "high"]])],
    [b"det", _det_header(times_ns={"infer": True})],
    [b"status", b'{"v": 1, "state": "running", "t_ns": 1, "fps": "fast"}'],
    [b"status", b'{"v": 1, "state": "running", "t_ns": "now"}'],
    [b"status", b'{"v": 1, "state": "running", "t_ns": 1, "latency_ms": {"capture_to_publish": {"p99": "x"}}}'],
    [b"status", b'{"v": 1, "state": "running", "t_ns": 1, "source": "' + b"s" * 5000 + b'"}'],
    [b"status", b'{"v": 1, "state": "running"}'],
]


@pytest.mark.parametrize("parts", HOSTILE, ids=range(len(HOSTILE)))
def test_every_hostile_field_is_a_wire_error_and_nothing_else(parts):
    from engines.errors import WireError
    from stream.wire import decode
    with pytest.raises(WireError):
        decode(parts)
    with pytest.raises(WireError):
        decode(parts, frame_pixels=False)


def _good_status() -> list[bytes]:
    import time
    return [b"status", json.dumps({"v": 1, "state": "running", "t_ns": time.monotonic_ns(), "fps": 30.0}).encode()]


def test_the_overlay_process_survives_every_hostile_message_and_counts_them(endpoint, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import zmq

    from conftest import ROOT
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(endpoint)
    summary = tmp_path / "overlay.json"
    ov = subprocess.Popen([sys.executable, "-m", "stream", "overlay", "--set", f"overlay.endpoint={endpoint}",
                          "--summary-json", str(summary)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        time.sleep(2.0)
        for m in HOSTILE:
            pub.send_multipart(m)
        pub.send_multipart(_good_status())
        time.sleep(1.0)
        assert ov.poll() is None, ov.communicate()[1][-2000:]          # still running
        ov.send_signal(signal.SIGINT)
        out, err = ov.communicate(timeout=20)
    finally:
        if ov.poll() is None:
            ov.kill()
        pub.close(0)
    assert ov.returncode == 0 and "Traceback" not in err, err[-2000:]
    s = json.loads(summary.read_text())
    assert sum(s["malformed"].values()) == len(HOSTILE) and s["messages"] == len(HOSTILE) + 1


def test_the_web_hub_survives_every_hostile_message_and_its_state_moves_on(endpoint):
    import asyncio
    import time

    import zmq

    from stream.config import load_config
    import stream.web.config  # noqa: F401
    import stream.overlay.config  # noqa: F401
    from stream.web.hub import Hub
    cfg = load_config(None, [f"web.endpoint={endpoint}", "web.state_interval_ms=50"])
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(endpoint)
    hub = Hub(cfg.extra["web"], cfg.extra["overlay"])
    hub.start(asyncio.new_event_loop())
    try:
        time.sleep(0.5)
        for m in HOSTILE:
            pub.send_multipart(m)
        for _ in range(3):
            pub.send_multipart(_good_status())
            time.sleep(0.2)
        assert hub._thread.is_alive()
        c = hub.counters()
        assert sum(c["malformed"].values()) == len(HOSTILE) and c["hub_errors"] == {}
        assert hub.view.status is not None and hub.view.status.fps == 30.0      # the good heartbeat got through
        seen = hub.last_state["t_send_ms"]
        time.sleep(0.3)
        assert hub.last_state["t_send_ms"] > seen                               # the state keeps being sent
        assert hub.last_state["status"]["state"] == "running" and hub.last_state["server"]["hub_errors"] == {}
    finally:
        hub.stop()
        pub.close(0)


# ------------------------------------------------------------------ 7. one unreadable frame never truncates quietly
@pytest.fixture
def frames_with_a_text_file(tmp_path):
    import cv2

    from engines.synthetic import SceneRenderer, SynthParams
    folder = tmp_path / "seq" / "images"
    folder.mkdir(parents=True)
    r = SceneRenderer(SynthParams(seed=5, seconds=5, width=160, height=120, fps=25))
    for i in range(1, 121):
        cv2.imwrite(str(folder / f"{i}.png"), r.render(i - 1).image)
    (folder / "11.png").write_text("this is not an image")
    return folder


def test_an_unreadable_frame_is_skipped_counted_and_said(frames_with_a_text_file, tiny_model, tmp_path):
    out = tmp_path / "qa"
    r = run_cli("replay", str(frames_with_a_text_file), "--out", str(out), "--no-video",
                "--set", f"engine.model={tiny_model}")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["processed"] == 119 and m["unreadable_frames"]["count"] == 1 and "11.png" in m["warning"]
    assert "WARNING: " in r.stdout and "1 frame(s) could not be read" in r.stdout
    assert "11.png" in (out / "report.html").read_text()
    summary = tmp_path / "s.json"
    r = run_cli("run", "--source", str(frames_with_a_text_file), "--set", "capture.pace=false",
                "--set", f"engine.model={tiny_model}", "--summary-json", str(summary))
    s = json.loads(summary.read_text())
    assert r.returncode == 0 and s["processed"] == 119 and s["read_errors"] == 1 and s["skipped_by_source"] == 0
    assert "UNREADABLE FRAMES: 1 skipped" in r.stdout


def test_site_check_counts_an_unreadable_frame_and_says_so(frames_with_a_text_file, tiny_model, tmp_path):
    out = tmp_path / "sc"
    r = run_cli("site-check", "--polyp-free", str(frames_with_a_text_file), "--out", str(out),
                "--set", f"engine.model={tiny_model}", timeout=300)
    report = json.loads(next(out.glob("*.json")).read_text())
    assert report["unreadable_frames"] == 1 and report["frames"] == 119, r.stderr[-2000:]
    assert "could not be read" in report["reason"]


# ------------------------------------------------------------------ 8. synthetic:// is paced like the tower it stands for
def test_a_synthetic_source_is_paced_at_its_frame_rate(tiny_model, tmp_path):
    summary = tmp_path / "s.json"
    r = run_cli("run", "--source", "synthetic://seed=3&size=160x120&fps=30&seconds=60", "--set",
                "pipeline.max_seconds=3", "--set", f"engine.model={tiny_model}", "--summary-json", str(summary))
    assert r.returncode == 0, r.stderr
    s = json.loads(summary.read_text())
    assert 60 <= s["read"] <= 100, s["read"]              # ~90 frames in 3 s at 30 fps, not hundreds
    assert s["dropped"] <= 5
