"""Overlay: state rules as a table, pixels drawn or not, and real processes over loopback ZeroMQ."""
import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq
from conftest import ROOT

import stream.overlay.config  # noqa: F401
from stream.config import load_config
from stream.detection import AlertState, Box, Detection
from stream.overlay.app import Overlay
from stream.overlay.draw import render
from stream.overlay.state import DetectorView, Display
from stream.wire import Status

MS = 1_000_000


def _det(t, alert=AlertState.ON, box=(0.4, 0.4, 0.6, 0.6)):
    return Detection(seq=1, t_capture_ns=t, source="s", score=0.9, alert=alert, boxes=(Box(*box, 0.9),))


@pytest.mark.parametrize("status, det_t, frame_t, now, expected", [
    ("running", 1000 * MS, 1000 * MS, 1010 * MS, Display.ACTIVE),          # detection of this very frame
    ("running", 1000 * MS, 1090 * MS, 1100 * MS, Display.ACTIVE),          # 90 ms older: still drawn
    ("running", 1000 * MS, 1150 * MS, 1160 * MS, Display.STALE),           # 150 ms older: not drawn
    ("running", 1300 * MS, 1000 * MS, 1310 * MS, Display.STALE),           # from a later frame: not drawn
    ("running", None, 1000 * MS, 1010 * MS, Display.STALE),                # no detection yet
    ("running", 1000 * MS, 1000 * MS, 1700 * MS, Display.OFFLINE),         # heartbeat 700 ms old
    ("no_signal", 1000 * MS, 1000 * MS, 1010 * MS, Display.NO_SIGNAL),
    ("stopped", 1000 * MS, 1000 * MS, 1010 * MS, Display.OFFLINE),
    (None, 1000 * MS, 1000 * MS, 1010 * MS, Display.OFFLINE),              # never heard a heartbeat
])
def test_display_rules(status, det_t, frame_t, now, expected):
    v = DetectorView(max_age_ms=100, heartbeat_timeout_ms=500)
    if status:
        v.on_status(Status(state=status, t_ns=1000 * MS), 1000 * MS)
    if det_t is not None:
        v.on_detection(_det(det_t), det_t)
    verdict = v.verdict(frame_t, now)
    assert verdict.display is expected
    assert (verdict.detection is not None) == (expected is Display.ACTIVE)


def test_error_detection_is_never_drawn():
    v = DetectorView(100, 500)
    v.on_status(Status(state="running", t_ns=0), 0)
    v.on_detection(_det(0, alert=AlertState.ERROR), 0)
    assert v.verdict(0, 1).display is Display.STALE


def test_newest_by_capture_time_survives_a_pipeline_restart():
    v = DetectorView(100, 500)
    v.on_detection(Detection(seq=900, t_capture_ns=5 * MS, source="s", score=0.1, alert=AlertState.OFF), 0)
    v.on_detection(Detection(seq=0, t_capture_ns=9 * MS, source="s", score=0.9, alert=AlertState.ON), 0)
    assert v.detection.seq == 0


def _box_ring(img, box, pad=6):
    h, w = img.shape[:2]
    x0, y0, x1, y1 = int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)
    ring = np.zeros((h, w), bool)
    ring[y0 - pad:y1 + pad, x0 - pad:x1 + pad] = True
    ring[y0 + pad:y1 - pad, x0 + pad:x1 - pad] = False
    return ring


def test_box_pixels_change_only_when_the_detection_is_fresh(clip):
    import cv2
    cap = cv2.VideoCapture(str(clip))
    frame = cap.read()[1]
    cfg = load_config(None).extra["overlay"]
    box = (0.45, 0.3, 0.7, 0.6)
    v = DetectorView(100, 500)
    v.on_status(Status(state="running", t_ns=0), 0)
    v.on_detection(_det(0, box=box), 0)
    ring = _box_ring(frame, box)
    fresh, stale = frame.copy(), frame.copy()
    render(fresh, v.verdict(50 * MS, 60 * MS), cfg)
    render(stale, v.verdict(250 * MS, 260 * MS), cfg)
    changed_fresh = np.abs(fresh.astype(int) - frame).max(axis=2) > 30
    changed_stale = np.abs(stale.astype(int) - frame).max(axis=2) > 30
    assert changed_fresh[ring].mean() > 0.2                 # the box is drawn around the polyp
    assert changed_stale[ring].sum() == 0                   # a stale box is never drawn
    # the alert border shows only with a fresh ON detection; the state mark is always there
    assert changed_fresh[:, -3:].mean() > 0.9 and changed_stale[:, -3:].sum() == 0
    assert changed_stale[:40, :120].any()


def _pipeline_proc(endpoint, model, seed=4):
    return subprocess.Popen([sys.executable, "-m", "stream", "run", "--source",
                             f"synthetic://seed={seed}&size=320x240&fps=25&seconds=600", "--set", f"engine.model={model}",
                             "--set", f"publisher.endpoint={endpoint}", "--set", "publisher.send_frames=true",
                             "--set", "engine.backend=onnxruntime", "--set", "publisher.heartbeat_hz=10"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(timeline, display, since, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        hits = [t for t, d in list(timeline) if d is display and t >= since]
        if hits:
            return hits[0]
        time.sleep(0.02)
    return None


def test_offline_when_the_publisher_dies_and_active_again_after_restart(endpoint, tmp_path, tiny_model):
    cfg = load_config(None, [f"overlay.endpoint={endpoint}", "overlay.heartbeat_timeout_ms=500",
                             f"overlay.latency_log={tmp_path}/lat.jsonl"]).extra["overlay"]
    ov = Overlay(cfg)
    timeline = []
    ov.on_draw = lambda verdict, img, new: timeline.append((time.monotonic(), verdict.display))
    th = threading.Thread(target=ov.run)
    th.start()
    p1 = _pipeline_proc(endpoint, tiny_model)
    try:
        assert _wait_for(timeline, Display.ACTIVE, 0, 60) is not None
        t_kill = time.monotonic()
        p1.send_signal(signal.SIGKILL)
        p1.wait()
        t_off = _wait_for(timeline, Display.OFFLINE, t_kill, 5)
        assert t_off is not None and t_off - t_kill < 0.5 + 0.1 + 0.15   # timeout + redraw period + slack
        p2 = _pipeline_proc(endpoint, tiny_model)
        try:
            t_restart = time.monotonic()
            assert _wait_for(timeline, Display.ACTIVE, t_restart, 60) is not None
        finally:
            p2.send_signal(signal.SIGINT)
            assert p2.wait(20) == 0
    finally:
        if p1.poll() is None:
            p1.kill()
        ov.stop_event.set()
        th.join(10)
    s = ov.summary()
    assert s["frames_drawn"] > 0 and s["capture_to_draw_ms"]["count"] == s["frames_drawn"]
    lines = [json.loads(x) for x in (tmp_path / "lat.jsonl").read_text().splitlines()]
    assert len(lines) == s["frames_drawn"] and all(x["capture_to_draw_ms"] > 0 for x in lines)


def test_malformed_messages_are_counted_and_survived(endpoint):
    cfg = load_config(None, [f"overlay.endpoint={endpoint}"]).extra["overlay"]
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(endpoint)
    ov = Overlay(cfg)
    th = threading.Thread(target=ov.run)
    th.start()
    time.sleep(0.3)
    bad = [[b"det", b"{nope"], [b"det", b'{"v": 99}'], [b"status", b'{"v": 1, "state": "dancing", "t_ns": 1}'],
           [b"det", b'{"v": 1}'], [b"frame", b'{"v": 1}', b"x" * 10], [b"det"]]
    for _ in range(3):
        for m in bad:
            pub.send_multipart(m)
    pub.send_multipart([b"status", json.dumps({"v": 1, "state": "running", "t_ns": 1}).encode()])
    time.sleep(0.5)
    ov.stop_event.set()
    th.join(10)
    pub.close(0)
    s = ov.summary()
    assert sum(s["malformed"].values()) == 18 and s["messages"] == 19
    assert ov.view.status is not None and ov.view.status.state == "running"   # the good message got through


def test_bad_overlay_config():
    from engines.errors import ConfigError
    with pytest.raises(ConfigError, match=r"overlay.alert_color: expected \[B, G, R\] with values 0..255"):
        load_config(None, ["overlay.alert_color=[0, 300, 0]"])
    with pytest.raises(ConfigError, match=r"overlay.alert_style: expected one of \['border', 'corners'\]"):
        load_config(None, ["overlay.alert_style=blink"])


def test_overlay_on_its_own_capture_of_the_feed(clip, tiny_model, endpoint, tmp_path):
    """The overlay captures the video itself (a second capture of the tower output); detections come from the
    pipeline over ZeroMQ; the annotated file has the video's size and frames."""
    import cv2
    cfg = load_config(None, [f"engine.model={tiny_model}", f"publisher.endpoint={endpoint}",
                             f"overlay.endpoint={endpoint}", f"overlay.video={clip}",
                             f"overlay.output={tmp_path / 'ov.mp4'}", "alerts.on_threshold=0.01", "alerts.min_hits=1"])
    from stream.pipeline import Pipeline
    pipe = Pipeline(cfg, source=str(clip))
    ov = Overlay(cfg.extra["overlay"])
    seen = []
    ov.on_draw = lambda verdict, img, new: seen.append(verdict.display) if new else None
    t1 = threading.Thread(target=pipe.run)
    t1.start()
    ov.run()                      # ends with the overlay's own copy of the clip
    t1.join(20)
    s = ov.summary()
    assert s["frames_drawn"] >= 100 and Display.ACTIVE in seen
    cap = cv2.VideoCapture(str(tmp_path / "ov.mp4"))
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (320, 240)
