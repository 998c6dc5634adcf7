"""Careless and hostile input, round two (docs/RELIABILITY.md, docs/SECURITY.md): nothing the user did not ask to
lose is lost, nothing the client did not send is read, every error a message with its exit code or HTTP status."""
from __future__ import annotations

import json
import os
import shlex
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from conftest import ROOT, run_cli
from engines.runtime.media import sniff
from stream.config import EXTERNAL_SECTIONS, SECTIONS, load_config


def _tree(p: Path) -> dict[str, bytes]:
    return {str(q.relative_to(p)): (q.read_bytes() if q.is_file() else b"<dir>") for q in sorted(p.rglob("*"))}


# ------------------------------------------------------------------------------------ outputs: nothing deleted
def test_replay_refuses_a_folder_it_did_not_write_and_loses_nothing(clip, tiny_model, tmp_path):
    precious = tmp_path / "precious"
    (precious / "sub").mkdir(parents=True)
    (precious / "important.txt").write_text("keep")
    (precious / "sub" / "notes.md").write_text("mine")
    before = _tree(precious)
    r = run_cli("replay", str(clip), "--out", str(precious), "--no-video", "--set", f"engine.model={tiny_model}")
    assert r.returncode == 2, r.stderr
    assert "polypwatch did not write" in r.stderr and "Traceback" not in r.stderr
    assert _tree(precious) == before
    assert not (tmp_path / "precious.partial").exists()


def test_replay_replaces_only_its_own_output_and_refuses_an_existing_file(clip, tiny_model, tmp_path):
    out = tmp_path / "qa"
    for _ in range(2):                      # the second run replaces the first: the folder carries the marker
        r = run_cli("replay", str(clip), "--out", str(out), "--no-video", "--set", f"engine.model={tiny_model}")
        assert r.returncode == 0, r.stderr
        assert (out / ".polypwatch-output").is_file() and (out / "metrics.json").is_file()
    a_file = tmp_path / "clip-copy.mp4"
    a_file.write_bytes(clip.read_bytes())
    t0 = time.monotonic()
    r = run_cli("replay", str(clip), "--out", str(a_file), "--set", f"engine.model={tiny_model}")
    assert r.returncode == 2 and "exists and is not a folder" in r.stderr, r.stderr
    assert a_file.read_bytes() == clip.read_bytes() and not (tmp_path / "clip-copy.mp4.partial").exists()
    assert time.monotonic() - t0 < 30           # refused at start, not after the replay


def test_a_study_leaves_a_partial_folder_it_did_not_write(clip, tiny_model, tmp_path):
    from stream.lab.qa.output_dir import make_output_dir
    out = tmp_path / "study"
    make_output_dir(out)
    foreign = out / "somebody.partial"
    foreign.mkdir()
    (foreign / "x.txt").write_text("x")
    r = run_cli("replay", str(clip), str(clip), "--out", str(out), "--no-video", "--workers", "1",
                "--set", f"engine.model={tiny_model}")
    assert r.returncode == 0, r.stderr
    assert (foreign / "x.txt").read_text() == "x"


@pytest.mark.parametrize("cmd, message", [
    (["run", "--source", "{clip}", "--summary-json", "{tmp}"], "--summary-json: expected a file path"),
    (["run", "--source", "{clip}", "--summary-json", "{tmp}/no/such/s.json"], "does not exist"),
    (["overlay", "--summary-json", "{tmp}"], "--summary-json: expected a file path"),
    (["replay", "{clip}", "{clip}", "--out", "{tmp}/q", "--workers", "-1"], "expected 0 (automatic) or more"),
])
def test_bad_output_and_worker_arguments_are_refused_at_start(cmd, message, clip, tmp_path):
    args = [a.format(clip=clip, tmp=tmp_path) for a in cmd]
    t0 = time.monotonic()
    r = run_cli(*args, "--set", "capture.pace=false")
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and time.monotonic() - t0 < 30


# ------------------------------------------------------------------------------- media: told by their first bytes
def _png_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def _image_bytes(ext: str, w: int = 40, h: int = 30) -> bytes:
    ok, buf = cv2.imencode(ext, np.full((h, w, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".webp"])
def test_image_sizes_are_read_from_the_header(ext):
    m = sniff(_image_bytes(ext, 40, 30))
    assert (m.kind, m.width, m.height) == ("image", 40, 30)


@pytest.mark.parametrize("head, kind", [
    (b"ffconcat version 1.0\nfile other.mp4\n", None), (b"#EXTM3U\n#EXT-X-VERSION:3\nseg.ts\n", None),
    (b"v=0\no=- 0 0 IN IP4 127.0.0.1\n", None), (b"", None), (b"hello", None),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "video"), (b"RIFF\x00\x00\x00\x00AVI LIST", "video"),
    (b"\x1a\x45\xdf\xa3\x00\x00", "video"),
])
def test_what_is_media_and_what_is_not(head, kind):
    m = sniff(head)
    assert (m.kind if m else None) == kind


@pytest.fixture(scope="module")
def checker(tiny_model):
    from stream.web.check import Checker, CheckLimits
    import stream.web.config  # noqa: F401
    cfg = load_config(None, [f"engine.model={tiny_model}", "engine.backend=onnxruntime"])
    c = Checker(cfg, CheckLimits(32_000_000, 300, 60.0))
    yield c
    c.close()


def test_an_uploaded_playlist_never_reads_a_server_file(checker, clip, tmp_path, monkeypatch):
    """An FFmpeg concat playlist named x.mp4 that points at a video on the server's disk, relative to the
    temporary folder and absolute: refused from its first bytes (415), nothing is decoded."""
    rel = os.path.relpath(clip, "/tmp")
    from stream.web.check import UploadError
    for target in (rel, str(clip)):
        playlist = f"ffconcat version 1.0\nfile '{target}'\n".encode()
        with pytest.raises(UploadError, match="neither an image nor a video") as e:
            checker.check(playlist, "x.mp4")
        assert e.value.status == 415


@pytest.mark.parametrize("w, h, status, message", [
    (40000, 30000, 413, "refused from the header"), (20000, 20000, 413, "refused from the header"),
    (9000, 9000, 413, "megapixels"), (8, 8, 400, "at least 16x16"),
])
def test_huge_and_tiny_image_headers_are_refused_before_decoding(checker, w, h, status, message):
    from stream.web.check import UploadError
    bomb = _png_header(w, h) + b"\x00\x00\x00\x00IDAT" + zlib.compress(b"\x00" * 1_000_000) + b"\x00" * 4
    t0 = time.monotonic()
    with pytest.raises(UploadError, match=message) as e:
        checker.check(bomb, "bomb.png")
    assert e.value.status == status and time.monotonic() - t0 < 1.0


def test_a_damaged_image_is_a_415_and_the_result_names_the_precision(checker):
    from stream.web.check import UploadError
    with pytest.raises(UploadError, match="cannot be decoded") as e:
        checker.check(_png_header(64, 64) + b"garbage", "broken.png")
    assert e.value.status == 415
    res = checker.check(_image_bytes(".png", 64, 48), "ok.png").result
    assert res["precision"] == "fp32" and res["precision_reason"] and res["model_file"] == "tiny.onnx"


def test_the_server_answers_a_hostile_upload_with_a_4xx(tiny_model, clip, tmp_path):
    """Through HTTP: the playlist and the bomb header are 4xx with a message, never a 500 with a trace."""
    import asyncio

    from aiohttp import FormData
    from aiohttp.test_utils import TestClient, TestServer

    import stream.web.config  # noqa: F401
    from stream.web.server import make_app
    cfg = load_config(None, [f"engine.model={tiny_model}", "engine.backend=onnxruntime"])

    async def go():
        async with TestClient(TestServer(make_app(cfg))) as client:
            codes = []
            for name, data in (("x.mp4", f"ffconcat version 1.0\nfile '{clip}'\n".encode()),
                               ("big.png", _png_header(40000, 30000) + b"\x00" * 64)):
                form = FormData()
                form.add_field("file", data, filename=name)
                r = await client.post("/api/check", data=form)
                codes.append((r.status, (await r.json())["error"]))
            return codes
    codes = asyncio.run(go())
    assert [c for c, _ in codes] == [415, 413], codes
    assert all(msg and "Traceback" not in msg for _, msg in codes)


@pytest.mark.parametrize("content", [b"hello, not an image\n", b""])
def test_a_file_that_is_not_media_is_a_source_error_everywhere(content, tiny_model, tmp_path):
    bad = tmp_path / "notimg.jpg"
    bad.write_bytes(content)
    for args in (["run", "--source", str(bad)], ["replay", str(bad), "--out", str(tmp_path / "r")]):
        r = run_cli(*args, "--set", f"engine.model={tiny_model}")
        assert r.returncode == 3, r.stderr
        assert "polypwatch can read" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.partial").exists()


def test_a_real_image_file_is_a_one_frame_source(tiny_model, tmp_path):
    img = tmp_path / "still.png"
    img.write_bytes(_image_bytes(".png", 64, 48))
    r = run_cli("replay", str(img), "--out", str(tmp_path / "r"), "--no-video", "--set", f"engine.model={tiny_model}")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["processed"] == 1 and m["ground_truth"] is False
    report = (tmp_path / "r" / "report.html").read_text()
    assert "no ground truth" in report and "the truth has only one class" not in report


# ----------------------------------------------------------------------------------- sequences: one filter each
def _two_sequences(root: Path, n: int = 10) -> Path:
    """A folder of frames from two recorded sequences (sequences.csv), every frame with a polyp mask: the
    second sequence's polyp is visible from its first frame."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = ["frame,sequence"]
    for i in range(2 * n):
        img = np.full((96, 128, 3), 120, np.uint8)
        cv2.circle(img, (64, 48), 20, (60, 60, 200), -1)
        mask = np.zeros((96, 128), np.uint8)
        cv2.circle(mask, (64, 48), 20, 255, -1)
        cv2.imwrite(str(root / "images" / f"{i + 1}.png"), img)
        cv2.imwrite(str(root / "masks" / f"{i + 1}.png"), mask)
        rows.append(f"{i + 1},{1 + i // n}")
    (root / "sequences.csv").write_text("\n".join(rows) + "\n")
    return root


def test_the_alert_filter_and_the_metrics_start_afresh_at_each_sequence(tiny_model, tmp_path):
    folder = _two_sequences(tmp_path / "seqs")
    r = run_cli("replay", str(folder), "--out", str(tmp_path / "qa"), "--no-video", "--set", f"engine.model={tiny_model}",
                "--set", "alerts.on_threshold=0.001", "--set", "alerts.min_hits=3", "--set", "alerts.window=5")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "qa" / "metrics.json").read_text())
    assert m["sequences"] == 2 and m["sequence_starts"] == [10]
    second = next(p for p in m["polyps"]["each"] if p["first_visible"] == 10)
    assert second["first_alert"] == 12 and second["time_to_detection_frames"] == 2     # not carried over: 3 of 5
    assert m["alert_episodes"] == 2                     # the episode of the first sequence ends at its end


def test_alert_episodes_end_at_a_sequence_boundary():
    from stream.detection import AlertState, Detection
    from stream.lab.qa.metrics import Episode, alert_episodes
    dets = [Detection(seq=i, t_capture_ns=i, source="s", score=0.9, alert=AlertState.ON, frame_index=i)
            for i in range(6)]
    assert alert_episodes(dets) == [Episode(0, 5)]
    assert alert_episodes(dets, (3,)) == [Episode(0, 2), Episode(3, 5)]


# ------------------------------------------------------------------------------------------- Ctrl-C in replay
def test_ctrl_c_stops_a_replay_cleanly(clip, tiny_model, tmp_path):
    out = tmp_path / "qa"
    p = subprocess.Popen([sys.executable, "-m", "stream", "replay", str(clip), "--out", str(out), "--realtime",
                          "--set", f"engine.model={tiny_model}"], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "qa.partial" / "detections.jsonl"
    t_end = time.monotonic() + 60
    while time.monotonic() < t_end and not (partial.is_file() and partial.stat().st_size > 0):
        time.sleep(0.05)
    assert partial.is_file(), "the replay never started"
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    assert "interrupted:" in stderr and "replay stopped after" in stderr and "Traceback" not in stderr
    assert not out.exists() and not (tmp_path / "qa.partial").exists()


def test_ctrl_c_stops_a_study_and_keeps_what_finished(clip, tiny_model, tmp_path):
    out = tmp_path / "study"
    p = subprocess.Popen([sys.executable, "-m", "stream", "replay", str(clip), str(clip), str(clip), "--out", str(out),
                          "--realtime", "--workers", "1", "--set", f"engine.model={tiny_model}"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t_end = time.monotonic() + 90
    while time.monotonic() < t_end and not list(out.glob("*.partial/detections.jsonl")):
        time.sleep(0.05)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 130 and "study stopped by the user" in stderr and "Traceback" not in stderr, stderr
    assert not list(out.glob("*.partial"))
    summary = json.loads((out / "summary.json").read_text())
    assert "interrupted" in {r["status"] for r in summary["inputs"]}


# ---------------------------------------------------------------------------------- the house's smaller truths
def _flat(cls) -> set[str]:
    return {k for k in cls.__dataclass_fields__ if not k.startswith("_")}


def test_default_yaml_lists_every_section_and_key_the_code_reads():
    import stream.overlay.config  # noqa: F401
    import stream.web.config  # noqa: F401
    raw = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    sections = {**SECTIONS, **EXTERNAL_SECTIONS}
    assert set(raw) == set(sections)
    for name, cls in sections.items():
        assert set(raw[name]) == _flat(cls), name
    assert load_config(ROOT / "configs" / "default.yaml") == load_config(None)


def test_readme_command_lines_run_as_written_in_a_shell():
    """No unquoted &, ;, |, <, > in a command line of the README (a shell would cut it there)."""
    text = (ROOT / "README.md").read_text()
    blocks = [b.replace("\\\n", " ") for b in text.split("```")[1::2]]      # continuation lines joined
    lines = [ln for block in blocks for ln in block.splitlines() if ln.startswith((".venv/bin/polypwatch", "tools/"))]
    assert len(lines) > 10
    for ln in lines:
        lex = shlex.shlex(ln, posix=True, punctuation_chars=True)
        lex.commenters = "#"
        bad = [t for t in lex if t and set(t) <= set("&;|<>()")]
        assert not bad, f"{ln!r}: a shell reads {bad}"


def test_the_annotated_video_keeps_the_source_frame_rate(tiny_model, endpoint, tmp_path):
    from engines.synthetic.clip import write_clip
    from engines.synthetic.params import SynthParams
    import stream.overlay.config  # noqa: F401
    from stream.overlay.app import Overlay
    from stream.pipeline import Pipeline
    src = tmp_path / "c25.mp4"
    write_clip(SynthParams(seed=2, seconds=3, width=160, height=120, fps=25), src)
    cfg = load_config(None, [f"engine.model={tiny_model}", f"publisher.endpoint={endpoint}",
                             "publisher.send_frames=true", "publisher.heartbeat_hz=20", f"overlay.endpoint={endpoint}",
                             f"overlay.output={tmp_path / 'ov.mp4'}"])
    ov = Overlay(cfg.extra["overlay"])
    t = threading.Thread(target=ov.run)
    t.start()
    time.sleep(0.5)                          # the subscriber is connected before the first frame
    Pipeline(cfg, source=str(src)).run()
    time.sleep(0.3)
    ov.stop_event.set()
    t.join(10)
    s = ov.summary()
    assert s["output_fps"] == 25 and s["frames_drawn"] > 30
    cap = cv2.VideoCapture(str(tmp_path / "ov.mp4"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25, abs=0.01)
