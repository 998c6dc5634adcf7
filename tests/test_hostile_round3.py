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
    from engines.lab.site.out_files import check_out
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


# ------------------------------------------------------------------ 10. sequence tables claim only frames that exist
def _frames_folder(folder: Path, n: int = 20) -> Path:
    import cv2
    import numpy as np
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((48, 64, 3), 40 + i, np.uint8))
    return folder


def test_a_readme_claiming_400_million_frames_costs_nothing(tmp_path):
    import time

    from engines.lab.data.datasets import _sequence_table
    from stream.lab.qa.inputs import resolve_input
    root = tmp_path / "ds"
    _frames_folder(root / "images")
    (root / "masks").mkdir()
    (root / "README_big.txt").write_text("1 to 400000000 | 1\n5 to 9 | 2\n")
    t0 = time.monotonic()
    assert len(_sequence_table(root)) == 20 and _sequence_table(root)["7"] == "2"
    plain = _frames_folder(tmp_path / "plain" / "frames")
    (tmp_path / "plain" / "README_x.txt").write_text("1 to 400000000 | 1\n")      # the parent's: not read
    (tmp_path / "plain" / "sequences.csv").write_text("frame,sequence\n1,a\n")
    inp = resolve_input(plain, None)
    assert inp.frame_count == 20 and inp.sequence_starts == ()
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("content, message", [
    (b"a,b\n1,2\n", r"expected the columns 'frame' and 'sequence'"),
    (b"frame,sequence\n\xff\xfe1,2\n", r"not UTF-8 text"),
])
def test_a_bad_sequences_csv_is_a_clear_error(tmp_path, content, message):
    from engines.errors import DatasetError
    from engines.lab.data.datasets import _sequence_table
    root = tmp_path / "ds"
    _frames_folder(root / "images", 3)
    (root / "sequences.csv").write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        _sequence_table(root)
    (root / "masks").mkdir()
    r = run_cli("replay", str(root), "--out", str(tmp_path / "qa"), "--no-video")
    assert r.returncode == 3 and "Traceback" not in r.stderr and "sequences.csv" in r.stderr, r.stderr[-1500:]


# ------------------------------------------------------------------ 11 + 14. one bad entry never turns a list into a 500
def test_web_lists_survive_bad_entries_and_never_list_a_link_as_a_report(tmp_path):
    import asyncio

    import aiohttp

    from test_web import _serve, server_cfg
    reports = tmp_path / "qa"
    good = reports / "weird name|with\nnewline"
    good.mkdir(parents=True)
    (good / "report.html").write_text("<html>ok</html>")
    (good / "metrics.json").write_text(json.dumps({"frames": 12}))
    (reports / "dangling").mkdir()
    (reports / "dangling" / "report.html").symlink_to(tmp_path / "nowhere.html")
    (reports / "passwd").mkdir()
    (reports / "passwd" / "report.html").symlink_to("/etc/passwd")
    (reports / "deep").mkdir()
    (reports / "deep" / "report.html").write_text("<html>deep</html>")
    (reports / "deep" / "metrics.json").write_text("[" * 100000 + "]" * 100000)
    rec = tmp_path / "rec"
    (rec / "20260101-000000-a").mkdir(parents=True)
    (rec / "20260101-000000-a" / "procedure.json").write_text("[]")
    (rec / "20260102-000000-b").mkdir()
    (rec / "20260102-000000-b" / "procedure.json").write_text(json.dumps({"source": "s", "started_utc": 5}))
    (rec / "20260102-000000-b" / "summary.json").write_text(json.dumps({"processed": "many", "seconds": "x",
                                                                        "record": []}))

    async def fn(url):
        async with aiohttp.ClientSession() as s:
            out = {}
            for path in ("/reports/?format=json", "/reports/", "/api/procedures", "/procedures/",
                         "/procedures/20260101-000000-a", "/procedures/20260102-000000-b"):
                async with s.get(url + path) as r:
                    out[path] = (r.status, await r.text())
            return out
    out = asyncio.run(_serve(server_cfg(f"web.reports_dir={reports}", f"record.dir={rec}", "web.uploads=false"),
                             fn))
    assert all(status == 200 for status, _ in out.values()), {k: v[0] for k, v in out.items()}
    listing = {e["path"]: e for e in json.loads(out["/reports/?format=json"][1])}
    assert set(listing) == {"weird name|with\nnewline", "dangling", "passwd", "deep"}
    assert "link" in listing["passwd"]["bad"] and "link" in listing["dangling"]["bad"]
    assert "cannot be read" in listing["deep"]["bad"] and listing["weird name|with\nnewline"]["frames"] == 12
    page = out["/reports/"][1]
    assert "root:" not in page and 'href="/reports/files/passwd/report.html"' not in page
    assert 'href="/reports/files/weird%20name%7Cwith%0Anewline/report.html"' in page      # URL-encoded, then escaped
    procs = {p["name"]: p for p in json.loads(out["/api/procedures"][1])["procedures"]}
    assert "not a readable JSON object" in procs["20260101-000000-a"]["bad"]
    assert procs["20260102-000000-b"]["frames"] is None and procs["20260102-000000-b"]["started_utc"] == ""


# ------------------------------------------------------------------ 12. exit codes and messages, never a traceback
LONG = "a" * 300


@pytest.mark.parametrize("args, code, message", [
    (("replay", "/tmp/x.mp4", "--out", f"/tmp/{LONG}"), 2, "--out: a path component of 300 bytes"),
    (("run", "--source", f"/tmp/{LONG}.mp4"), 2, "--source: a path component of 304 bytes"),
    (("run", "--set", f"pipeline.detections_log=/tmp/{LONG}"), 2, "pipeline.detections_log: a path component"),
    (("overlay", "--set", f"overlay.output=/tmp/{LONG}"), 2, "overlay.output: a path component"),
    (("web", "--set", f"web.reports_dir=/tmp/{LONG}"), 2, "web.reports_dir: a path component"),
    (("run", "--set", "alerts.window=" + "9" * 5000), 2, "--set alerts.window: a value YAML cannot read"),
    (("run", "--source", "synthetic://fps=inf"), 3, "synthetic source: fps: expected 1..240"),
    (("run", "--source", "synthetic://seconds=nan"), 3, "synthetic source: fps: expected 1..240 and seconds"),
    (("site-check", "--polyp-free", "/nonexistent.mp4", "--out", "/proc/polypwatch-x"), 2,
     "--out /proc/polypwatch-x: cannot be written"),
])
def test_bad_paths_and_values_are_messages_with_their_exit_codes(args, code, message):
    r = run_cli(*args, timeout=60)
    assert r.returncode == code and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-1500:]


def test_a_non_utf8_list_file_and_a_billion_laughs_config_are_refused(tmp_path):
    lst = tmp_path / "inputs.txt"
    lst.write_bytes(b"\xff\xfe clip.mp4\n")
    r = run_cli("replay", str(lst), "--out", str(tmp_path / "q"))
    assert r.returncode == 3 and "not UTF-8 text" in r.stderr and "Traceback" not in r.stderr, r.stderr[-1500:]
    laughs = tmp_path / "laughs.yaml"
    laughs.write_text('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")))
    assert len(laughs.read_bytes()) < 800
    r = run_cli("run", "--config", str(laughs), timeout=30)
    assert r.returncode == 2 and "anchors and aliases expand to more than" in r.stderr, r.stderr[-800:]
    bomb = "[&a0 [x,x,x,x,x,x,x,x,x], " + ", ".join(f"&a{i} [{','.join(['*a' + str(i - 1)] * 9)}]" for i in range(1, 7)) + "]"
    r = run_cli("run", "--set", f"web.listen={bomb}", timeout=30)
    assert r.returncode == 2 and "expand to more than" in r.stderr and len(r.stderr) < 2000, r.stderr[-800:]
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    r = run_cli("run", "--config", str(deep), timeout=30)
    assert r.returncode == 2 and "nested deeper" in r.stderr and "Traceback" not in r.stderr, r.stderr[-800:]


def test_an_echoed_value_is_never_echoed_whole():
    from engines.errors import ConfigError
    from stream.config import load_config
    with pytest.raises(ConfigError) as e:
        load_config(None, ["capture.width=" + "x" * 100_000])
    assert len(str(e.value)) < 300 and "characters)" in str(e.value)


def _as_nobody():
    import os
    import shutil
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root without setpriv: a permission cannot be denied to this test")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_an_unreadable_file_is_a_source_error_in_run_replay_and_site_check(clip):
    import os
    import subprocess
    import sys
    import tempfile

    from conftest import ROOT
    d = Path(tempfile.mkdtemp(prefix="polypwatch-perm-"))
    try:
        d.chmod(0o777)
        v = d / "v.mp4"
        v.write_bytes(clip.read_bytes())
        v.chmod(0)
        prefix = _as_nobody()
        if not os.access(sys.executable, os.X_OK) or not os.access(ROOT, os.R_OK | os.X_OK):
            pytest.skip("the checkout is not readable by another user")
        for args in (("run", "--source", str(v), "--set", "capture.pace=false"), ("replay", str(v), "--out",
                     str(d / "q")), ("site-check", "--polyp-free", str(v), "--out", str(d / "s"))):
            r = subprocess.run([*prefix, sys.executable, "-m", "stream", *args], cwd=ROOT, capture_output=True,
                               text=True, timeout=120)
            assert r.returncode == 3 and "cannot be read (Permission denied)" in r.stderr, (args, r.stderr[-800:])
            assert "Traceback" not in r.stderr
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ 13. the README's overlay line says what is missing
def test_the_overlay_says_when_the_pipeline_publishes_no_frames(clip, tiny_model, endpoint, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT
    ov = subprocess.Popen([sys.executable, "-m", "stream", "overlay", "--set", f"overlay.endpoint={endpoint}",
                           "--set", f"overlay.output={tmp_path / 'annotated.mp4'}"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = subprocess.Popen([sys.executable, "-m", "stream", "run", "--source", str(clip), "--set", "capture.loop=true",
                            "--set", f"publisher.endpoint={endpoint}", "--set", f"engine.model={tiny_model}"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(8)
    finally:
        ov.send_signal(signal.SIGINT)
        out, err = ov.communicate(timeout=30)
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=30)
    assert ov.returncode == 0, err[-1500:]
    assert "WARNING: the pipeline sends heartbeats but no frames" in out and "publisher.send_frames" in out, out
    assert "nothing is written to overlay.output" in out


# ------------------------------------------------------------------ 14. a study's table, the label inside the border
def test_a_name_with_a_newline_or_pipe_stays_in_its_cell():
    from stream.lab.qa.study_report import COLUMNS, markdown
    row = {c: None for c in COLUMNS} | {"input": "a|b\nc.mp4", "status": "failed", "error": "bad | worse\nworst",
                                        "ended_early": False}
    s = {"counts": {"done": 0, "skipped": 0, "failed": 1}, "study": {}, "inputs": [row],
         "pooled": {"inputs_with_truth": 0, "polyps_detected": 0, "polyps": 0, "polyp_detection_rate": None,
                    "polyp_detection_rate_ci95": None, "frame_sensitivity_alert": None,
                    "frame_specificity_alert": None, "false_alarms_per_min": None, "false_alarms": 0,
                    "minutes": 0}}
    try:
        lines = markdown(s).splitlines()
    except KeyError as e:
        pytest.fail(f"markdown needs {e}")
    table = [ln for ln in lines if ln.startswith("| ")]
    assert len(table) == 2 and table[1].count(" | ") == len(COLUMNS)            # one row, every cell in place
    assert "a\\|b c.mp4" in table[1] and "bad \\| worse worst" in table[1]


def test_the_latency_label_sits_inside_the_alert_border():
    import numpy as np

    import stream.overlay.config  # noqa: F401
    from stream.config import load_config
    from stream.detection import AlertState, Box, Detection
    from stream.overlay.draw import alert_thickness, render
    from stream.overlay.state import Display, Verdict
    cfg = load_config(None, []).extra["overlay"]
    d = Detection(seq=1, t_capture_ns=1, source="s", score=0.9, alert=AlertState.ON, boxes=(Box(0.4, 0.4, 0.6, 0.6, 0.9),))
    for h, w in ((240, 320), (720, 1280), (1080, 1920)):
        img = np.full((h, w, 3), 90, np.uint8)
        render(img, Verdict(Display.ACTIVE, d, 0.0), cfg, 12.3)
        region = img[: h // 4, : w // 4]
        text = np.argwhere((np.abs(region.astype(int) - 200).max(axis=2) <= 30))        # the grey latency text
        assert len(text) and text[:, 1].min() >= alert_thickness(h), (h, text[:, 1].min())
