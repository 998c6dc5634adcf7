"""polypwatch web: a real server on a loopback port fed by a real pipeline, real WebSocket and HTTP clients, a real
headless Chromium (skipped with the reason where Debian's chromium is not installed)."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pytest

from conftest import ROOT, free_port
from engines.errors import ConfigError
from stream.config import load_config

browser_mod = pytest.importorskip("browser")
needs_chromium = pytest.mark.skipif(browser_mod.chromium_path() is None,
                                    reason="Debian's chromium is not installed (make test installs it where apt "
                                           "can: apt-get install chromium)")


def web_cfg(*sets: str):
    import stream.web.config  # noqa: F401
    return load_config(None, list(sets))


# ------------------------------------------------------------------------------------------ configuration
@pytest.mark.parametrize("sets, message", [
    (["web.listen=0.0.0.0:8080"], r"web.token: expected an access token when web.listen"),
    (["web.listen=0.0.0.0:8080", "web.token=short"], r"web.token: expected at least 16 characters"),
    (["web.listen=8080"], r"web.listen: expected HOST:PORT"),
    (["web.listen=127.0.0.1:99999"], r"web.listen: expected HOST:PORT"),
    (["web.endpoint=http://x"], r"web.endpoint: expected tcp://HOST:PORT"),
    (["web.reports_dir=/no/such/folder"], r"web.reports_dir: folder '/no/such/folder' not found"),
    (["web.max_in_flight=0"], r"web.max_in_flight: expected a value in 1..16"),
    (["web.token=abcdefghijklmnopq", "web.token_file=/etc/hostname"], r"web.token_file: expected web.token or"),
])
def test_bad_web_config_names_the_key(sets, message):
    with pytest.raises(ConfigError, match=message):
        web_cfg(*sets)


def test_token_off_loopback_accepted_and_read_from_a_file(tmp_path, monkeypatch):
    f = tmp_path / "token"
    f.write_text("s3cret-token-0123456789\n")
    cfg = web_cfg("web.listen=0.0.0.0:8080", f"web.token_file={f}")
    assert cfg.extra["web"].access_token() == "s3cret-token-0123456789"
    monkeypatch.setenv("POLYPWATCH_WEB_TOKEN", "from-the-environment-1234")
    assert web_cfg('web.listen="[::]:8080"').extra["web"].access_token() == "from-the-environment-1234"


# ------------------------------------------------------------------------------------------ a real stack
def start_pipeline(clip: Path, endpoint: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stream", "run", "--source", str(clip), "--set", "capture.loop=true",
                             "--set", f"publisher.endpoint={endpoint}", "--set", "publisher.send_frames=true",
                             "--set", "publisher.heartbeat_hz=10", "--set", "engine.threads=1", *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_web(port: int, endpoint: str, *extra: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "stream", "web", "--listen", f"127.0.0.1:{port}", "--connect",
                          endpoint, "--set", "engine.threads=1", *extra],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("polypwatch web: http://127.0.0.1:"), (line, p.stderr.read() if p.poll() else "")
    return p


def stop(p: subprocess.Popen, sig=signal.SIGINT) -> None:
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def parse_frame(data: bytes) -> tuple[dict, np.ndarray]:
    n = int.from_bytes(data[:4], "big")
    header = json.loads(data[4:4 + n])
    img = cv2.imdecode(np.frombuffer(data[4 + n:], np.uint8), cv2.IMREAD_COLOR)
    return header, img


@pytest.fixture
def stack(polyp_clip, endpoint):
    port = free_port()
    web = start_web(port, endpoint)
    pipe = start_pipeline(polyp_clip, endpoint)
    yield {"port": port, "pipe": pipe, "web": web, "url": f"http://127.0.0.1:{port}"}
    stop(pipe)
    stop(web)


async def _read_frames(url: str, n: int, timeout: float = 60) -> list[tuple[dict, np.ndarray]]:
    out = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url.replace("http", "ws") + "/ws") as ws:
        hello = json.loads((await ws.receive(timeout=10)).data)
        assert hello["type"] == "hello" and hello["style"]["box_color"] == "#00ff00"
        t_end = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < t_end:
            msg = await ws.receive(timeout=10)
            if msg.type == aiohttp.WSMsgType.BINARY:
                h, img = parse_frame(msg.data)
                out.append((h, img))
                await ws.send_str(json.dumps({"type": "ack", "seq": h["seq"]}))
    return out


def test_websocket_and_http_clients_get_frames_and_detections_in_order(stack):
    frames = asyncio.run(_read_frames(stack["url"], 60))
    assert len(frames) == 60
    seqs = [h["seq"] for h, _ in frames]
    assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs          # newest only, never backwards
    first_beat = next(k for k, (h, _) in enumerate(frames) if h["status"]["state"] is not None)
    for k, (h, img) in enumerate(frames):
        assert img is not None and img.shape == (h["height"], h["width"], 3) == (360, 480, 3)
        v = h["verdict"]
        # before the first heartbeat reached the server the detector counts as OFFLINE (never as "no polyp")
        assert v["display"] in (("ACTIVE", "STALE") if k >= first_beat else ("OFFLINE",))
        if v["display"] == "ACTIVE":
            assert v["det_seq"] == h["seq"] and v["det_age_ms"] == 0 and h["capture_to_publish_ms"] > 0
        if not v["alert_shown"]:
            assert v["boxes"] == []
        assert h["age_at_send_ms"] > 0
        if k >= first_beat:
            assert h["status"]["model_id"] == "polypwatch-lite0-v3"
        assert h["viewer"]["sent"] >= 1
    assert sum(h["verdict"]["display"] == "ACTIVE" for h, _ in frames) >= 50

    async def http():
        async with aiohttp.ClientSession() as s:
            async with s.get(stack["url"] + "/api/state") as r:
                state = await r.json()
            async with s.get(stack["url"] + "/api/snapshot.jpg") as r:
                assert r.status == 200 and r.content_type == "image/jpeg"
                img = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR)
                meta = json.loads(r.headers["X-Polypwatch-Frame"])
            async with s.get(stack["url"] + "/") as r:
                page = await r.text()
        return state, img, meta, page
    state, img, meta, page = asyncio.run(http())
    assert state["last"]["status"]["state"] == "running" and state["server"]["frames_in"] >= 60
    assert state["server"]["malformed"] == {} and state["uploads"] is True
    assert img.shape == (360, 480, 3) and meta["seq"] >= seqs[-1]
    assert "/static/live.js" in page


def test_a_stalled_viewer_slows_neither_the_pipeline_nor_other_viewers(polyp_clip, endpoint):
    port = free_port()
    web = start_web(port, endpoint, "--set", "web.uploads=false")
    pipe = start_pipeline(polyp_clip, endpoint, "--set", "pipeline.max_seconds=9")
    url = f"http://127.0.0.1:{port}"

    async def scenario():
        async with aiohttp.ClientSession() as s:
            stalled = await s.ws_connect(url.replace("http", "ws") + "/ws")     # never reads, never acks
            t_end = time.monotonic() + 60                  # the pipeline's start-up is not what is measured:
            while time.monotonic() < t_end:                # wait for its first frames (over 4 s on a slow CPU)
                async with s.get(url + "/api/state") as r:
                    if (await r.json())["server"]["frames_in"] >= 1:
                        break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            frames = await _read_frames(url, 10_000, timeout=4.0)                 # a live viewer meanwhile
            async with s.get(url + "/api/state") as r:
                state = await r.json()
            await stalled.close()
            return frames, state
    try:
        frames, state = asyncio.run(scenario())
    finally:
        out, err = pipe.communicate(timeout=60)
        stop(web)
    assert pipe.returncode == 0, err[-2000:]
    fps = 25
    assert len(frames) >= 0.6 * 4.0 * fps, len(frames)        # the live viewer kept receiving frames
    stalled_counters = min(state["viewers"], key=lambda v: v["acked"])
    assert stalled_counters["acked"] == 0 and stalled_counters["sent"] <= 2    # max_in_flight, then only dropped
    assert stalled_counters["dropped"] > 40
    m = {line.split()[2].rstrip(","): line for line in out.splitlines() if line.startswith("frames read")}
    assert m, out
    dropped = int(out.split("dropped ")[1].split()[0])
    assert dropped == 0, out                                    # the pipeline dropped nothing


# ------------------------------------------------------------------------------------------ the page in a browser
def _ring(box, w, h, x0, y0, scale: float = 1.0):
    """Screenshot pixel coordinates along the middle of a box outline drawn 3 px wide inside the box, on a canvas
    shown ``scale`` times its pixel size."""
    bx0, by0, bx1, by1 = (round(box[0] * w) + x0, round(box[1] * h) + y0, round(box[2] * w) + x0,
                          round(box[3] * h) + y0)
    a, b, m = int(1.5 * scale), int(1.5 * scale) + 1, 4 + int(3 * scale)
    pts = [(x, by0 + a) for x in range(bx0 + m, bx1 - m)] + [(x, by1 - b) for x in range(bx0 + m, bx1 - m)]
    pts += [(bx0 + a, y) for y in range(by0 + m, by1 - m)] + [(bx1 - b, y) for y in range(by0 + m, by1 - m)]
    return np.array(pts)


@needs_chromium
def test_browser_draws_box_and_alert_border_then_offline_when_the_pipeline_is_killed(stack):
    from browser import Browser

    async def scenario():
        async with Browser() as b:
            await b.goto(stack["url"] + "/")
            await b.wait_for("window.polypwatch.drawn > 3", 30)
            await b.wait_for("window.polypwatch.verdict && window.polypwatch.verdict.alert_shown && "
                             "window.polypwatch.verdict.boxes.length > 0", 40)
            await b.eval("window.polypwatch.pause()")
            info = await b.eval("JSON.stringify({v: window.polypwatch.verdict, r: "
                                "document.getElementById('feed').getBoundingClientRect(), last: window.polypwatch.last})")
            shot_alert = await b.screenshot()
            await b.eval("window.polypwatch.resume()")
            await b.wait_for("window.polypwatch.display === 'ACTIVE'", 10)
            t_kill = time.monotonic()
            stack["pipe"].send_signal(signal.SIGKILL)
            t_off = await b.wait_for("window.polypwatch.display === 'OFFLINE'", 5)
            await asyncio.sleep(0.2)
            shot_off = await b.screenshot()
            state_text = await b.eval("document.getElementById('state').textContent")
            return json.loads(info), shot_alert, t_off - t_kill, shot_off, state_text
    info, shot, offline_s, shot_off, state_text = asyncio.run(scenario())
    r, v = info["r"], info["v"]
    x0, y0, w, h = round(r["x"]), round(r["y"]), round(r["width"]), round(r["height"])
    assert abs(w / h - info["last"]["width"] / info["last"]["height"]) < 0.01       # scaled, at its aspect ratio
    canvas = shot[y0:y0 + h, x0:x0 + w].astype(int)
    ring = _ring(v["boxes"][0], w, h, x0, y0, w / info["last"]["width"])
    px = shot[ring[:, 1], ring[:, 0]].astype(int)
    green = (px[:, 1] > 200) & (px[:, 0] < 80) & (px[:, 2] < 80)         # BGR (0, 255, 0)
    assert green.mean() > 0.9, green.mean()
    edge = np.concatenate([canvas[1, 20:-20], canvas[-2, 20:-20], canvas[20:-20, -2]])
    gold = (np.abs(edge - np.array([0, 215, 255])) < 40).all(axis=1)    # BGR (0, 215, 255), the alert border
    assert gold.mean() > 0.9, gold.mean()
    # OFFLINE within a second of the kill: heartbeat timeout 0.5 s + state period 0.1 s + polling
    assert offline_s < 1.0, offline_s
    assert state_text.startswith("OFFLINE")
    after = shot_off[y0:y0 + h, x0:x0 + w]
    px_after = after[ring[:, 1] - y0, ring[:, 0] - x0].astype(int)
    assert ((px_after[:, 1] > 200) & (px_after[:, 0] < 80) & (px_after[:, 2] < 80)).mean() < 0.2   # no stale box
    red = (after[..., 2] > 200) & (after[..., 1] < 60) & (after[..., 0] < 60)
    assert red.sum() > 500                                               # "DETECTOR OFFLINE" written across


def test_the_picture_fills_the_window_and_the_sound_is_off_until_switched_on(stack):
    """The video scales to the space it has at its own aspect ratio (two window sizes, boxes still on the polyp);
    the sound toggle is off by default, and once on, a new alert episode gives exactly one cue."""
    from browser import Browser

    async def at(size):
        async with Browser(size=size) as b:
            await b.goto(stack["url"] + "/")
            await b.wait_for("window.polypwatch.drawn > 3", 30)
            off = await b.eval("JSON.stringify([window.polypwatch.sound, document.getElementById('sound').checked])")
            await b.wait_for("window.polypwatch.alertShown", 40)
            cues_off = await b.eval("window.polypwatch.cues")
            await b.eval("window.polypwatch.pause()")
            info = json.loads(await b.eval("JSON.stringify({r: document.getElementById('feed').getBoundingClientRect(), "
                                           "v: window.polypwatch.verdict, last: window.polypwatch.last})"))
            shot = await b.screenshot()
            await b.eval("window.polypwatch.resume()")
            await b.eval("document.getElementById('sound').click()")
            await b.wait_for("!window.polypwatch.alertShown", 20)
            await b.wait_for("window.polypwatch.alertShown", 20)
            return json.loads(off), cues_off, await b.eval("window.polypwatch.cues"), info, shot
    results = [asyncio.run(at(size)) for size in ((1000, 700), (1800, 1100))]
    widths = []
    for off, cues_off, cues_on, info, shot in results:
        r, v, last = info["r"], info["v"], info["last"]
        x0, y0, w, h = round(r["x"]), round(r["y"]), round(r["width"]), round(r["height"])
        assert abs(w / h - last["width"] / last["height"]) < 0.01 and w > last["width"]      # 480x360 scaled up
        assert off == [False, False] and cues_off == 0 and cues_on == 1
        ring = _ring(v["boxes"][0], w, h, x0, y0, w / last["width"])
        px = shot[ring[:, 1], ring[:, 0]].astype(int)
        assert ((px[:, 1] > 200) & (px[:, 0] < 80) & (px[:, 2] < 80)).mean() > 0.8     # the box where it belongs
        widths.append(w)
    assert widths[1] > widths[0]


# ------------------------------------------------------------------------------------------ in-process server
async def _serve(cfg, fn):
    """A real server (stream.web.server.serve) on a loopback port in this event loop while ``fn(url)`` runs."""
    from stream.web.server import serve
    stop_ev = asyncio.Event()
    task = asyncio.create_task(serve(cfg, stop_ev))
    url = "http://" + cfg.extra["web"].listen
    async with aiohttp.ClientSession() as s:
        for _ in range(200):
            if task.done():
                task.result()
            try:
                async with s.get(url + "/api/state") as r:
                    if r.status in (200, 401):
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    try:
        return await fn(url)
    finally:
        stop_ev.set()
        await task


def server_cfg(*sets: str):
    return web_cfg(f"web.listen=127.0.0.1:{free_port()}", f"web.endpoint=tcp://127.0.0.1:{free_port()}",
                   "engine.threads=1", *sets)


@pytest.fixture(scope="module")
def polyp_image(tmp_path_factory) -> Path:
    """A frame with a polyp in view that the shipped model scores above its threshold."""
    from engines.synthetic import SceneRenderer, SynthParams
    f = SceneRenderer(SynthParams(seed=1, seconds=6, width=480, height=360, fps=25)).render(60)
    assert f.polyps
    p = tmp_path_factory.mktemp("upload") / "polyp.png"
    cv2.imwrite(str(p), f.image)
    return p


async def _post(s: aiohttp.ClientSession, url: str, data: bytes, name: str) -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    async with s.post(url + "/api/check", data=form) as r:
        return r.status, await r.json()


def test_uploads_good_and_bad(polyp_image, polyp_clip, tmp_path):
    avi = tmp_path / "short.avi"
    w = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 25, (240, 180))
    cap = cv2.VideoCapture(str(polyp_clip))
    for _ in range(20):
        w.write(cv2.resize(cap.read()[1], (240, 180), interpolation=cv2.INTER_AREA))
    w.release()
    cap.release()
    data_avi = avi.read_bytes()
    assert len(data_avi) < 250_000
    mp4 = polyp_clip.read_bytes()

    async def fn(url):
        async with aiohttp.ClientSession() as s:
            res = {"image": await _post(s, url, polyp_image.read_bytes(), "polyp.png"),
                   "avi": await _post(s, url, data_avi, "short.avi"),
                   "avi_cut": await _post(s, url, data_avi[: len(data_avi) // 2], "cut.avi"),
                   "mp4_cut": await _post(s, url, mp4[: len(mp4) * 6 // 10], "cut.mp4"),
                   "text": await _post(s, url, b"hello, this is not a picture\n" * 50, "notes.png"),
                   "empty": await _post(s, url, b"", "empty.jpg"),
                   "big": await _post(s, url, b"\0" * 300_000, "big.png")}
            async with s.post(url + "/api/check", data=b"raw body") as r:
                res["not_multipart"] = (r.status, await r.json())
            return res
    r = asyncio.run(_serve(server_cfg("web.max_upload_mb=0.25", "web.max_clip_frames=12"), fn))
    status, img = r["image"]
    assert status == 200, img
    assert img["kind"] == "image" and img["model_id"] == "polypwatch-lite0-v3"
    assert img["score"] >= img["threshold"] and img["decision"] == "polyp suspected" and img["boxes"]
    hm = img["heatmap"]
    assert hm["width"] == 32 and len(hm["values"]) == hm["height"] and max(max(row) for row in hm["values"]) > 0.5
    preview = cv2.imdecode(np.frombuffer(__import__("base64").b64decode(img["preview"].split(",")[1]), np.uint8),
                           cv2.IMREAD_COLOR)
    assert preview.shape == (360, 480, 3)
    status, vid = r["avi"]
    assert status == 200 and vid["kind"] == "video" and vid["frames_checked"] == 12 and len(vid["frames"]) == 12
    assert vid["frames"][5] == {**vid["frames"][5], "frame": 5, "t_s": 0.2}
    assert any("only the first 12 of 20 frames" in w for w in vid["warnings"])
    status, cut = r["avi_cut"]
    if status == 200:            # the first half decodes: checked, and said to be truncated
        assert cut["frames_checked"] < 12 or any("truncated" in w for w in cut["warnings"])
    else:
        assert "truncated" in cut["error"]
    for key, code, message in (("mp4_cut", 415, "neither an image nor a video"),
                               ("text", 415, "neither an image nor a video"),
                               ("empty", 400, "the upload is empty"),
                               ("big", 413, "larger than the limit of 0.2 MB"),
                               ("not_multipart", 400, "expected a multipart/form-data upload")):
        status, body = r[key]
        assert status == code and message in body["error"], (key, status, body)
        assert "Traceback" not in body["error"]


def test_access_token(tmp_path):
    token = "test-token-0123456789abcdef"

    async def fn(url):
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/") as r:
                no_token = (r.status, await r.json())
            async with s.get(url + "/api/state", headers={"Authorization": "Bearer " + token[:-1] + "X"}) as r:
                wrong = r.status
            async with s.get(url + "/api/state", headers={"Authorization": "Bearer " + token}) as r:
                bearer = r.status
            try:
                await s.ws_connect(url.replace("http", "ws") + "/ws")
                ws_no_token = "connected"
            except aiohttp.WSServerHandshakeError as e:
                ws_no_token = e.status
        # the browser way: ?token= once, then the cookie (unsafe=True: aiohttp's jar keeps cookies of IP hosts)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            async with s.get(url + f"/?token={token}", allow_redirects=False) as r:
                redirect = (r.status, r.headers.get("Location"))
            async with s.get(url + "/") as r:
                page = r.status
            async with s.ws_connect(url.replace("http", "ws") + "/ws") as ws:
                hello = json.loads((await ws.receive(timeout=5)).data)["type"]
        return no_token, wrong, bearer, ws_no_token, redirect, page, hello
    no_token, wrong, bearer, ws_no_token, redirect, page, hello = asyncio.run(
        _serve(server_cfg(f"web.token={token}", "web.uploads=false"), fn))
    assert no_token[0] == 401 and "access token required" in no_token[1]["error"]
    assert wrong == 401 and bearer == 200 and ws_no_token == 401
    assert redirect == (302, "/") and page == 200 and hello == "hello"


def test_reports_are_listed_and_served_read_only(clip, tiny_model, tmp_path):
    from conftest import run_cli
    reports = tmp_path / "qa"
    r = run_cli("replay", str(clip), "--out", str(reports / "clip1"), "--set", f"engine.model={tiny_model}",
                "--no-video")
    assert r.returncode == 0, r.stderr[-2000:]
    (tmp_path / "secret.txt").write_text("outside the reports folder")
    (reports / "link").symlink_to(tmp_path / "secret.txt")

    async def fn(url):
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/reports/?format=json") as r:
                listing = await r.json()
            async with s.get(url + "/reports/") as r:
                page = await r.text()
            async with s.get(url + "/reports/files/clip1/report.html") as r:
                report = (r.status, await r.text())
            out = {}
            for path in ("/reports/files/../secret.txt", "/reports/files/%2e%2e/secret.txt", "/reports/files/link",
                         "/static/../server.py"):
                async with s.get(url + path) as r:
                    out[path] = (r.status, await r.text())
            return listing, page, report, out
    listing, page, report, out = asyncio.run(_serve(server_cfg(f"web.reports_dir={reports}", "web.uploads=false"), fn))
    assert [e["path"] for e in listing] == ["clip1"] and listing[0]["kind"] == "replay" and listing[0]["frames"] == 120
    assert 'href="/reports/files/clip1/report.html"' in page
    assert report[0] == 200 and "<html" in report[1].lower()
    for path, (status, body) in out.items():
        assert status in (403, 404) and "outside the reports folder" not in body and "aiohttp" not in body, path


@needs_chromium
def test_check_page_in_a_browser(polyp_image, tmp_path):
    from browser import Browser, set_file
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")

    async def fn(url):
        async with Browser() as b:
            await b.goto(url + "/check")
            await b.wait_for("document.getElementById('model').textContent.includes('polypwatch-lite0-v3')", 10)
            await set_file(b, "#file", str(polyp_image))
            await b.wait_for("window.polypwatch.result !== null", 60)
            shown = await b.eval("JSON.stringify({d: document.getElementById('decision').textContent, "
                                 "s: document.getElementById('score').textContent, "
                                 "b: document.getElementById('boxes').textContent, "
                                 "img: document.getElementById('preview').naturalWidth})")
            await set_file(b, "#file", str(bad))
            await b.wait_for("window.polypwatch.error !== null", 30)
            error = await b.eval("document.getElementById('error').textContent")
            hidden = await b.eval("document.getElementById('result').hidden")
            return json.loads(shown), error, hidden
    shown, error, hidden = asyncio.run(_serve(server_cfg(), fn))
    assert shown["d"] == "polyp suspected" and float(shown["s"]) >= 0.7 and shown["b"].startswith("[")
    assert shown["img"] == 480
    assert "neither an image nor a video" in error and hidden is True


def test_configs_web_yaml_lists_the_defaults():
    defaults = web_cfg().extra["web"]
    assert load_config(ROOT / "configs" / "web.yaml").extra["web"] == defaults


# ------------------------------------------------------------------------------------------ procedure records
def test_procedures_are_listed_with_their_galleries_and_served_read_only(polyp_clip, tmp_path):
    from stream.pipeline import Pipeline
    root = tmp_path / "rec"
    cfg = load_config(None, ["capture.pace=false", "publisher.endpoint=tcp://127.0.0.1:*", "engine.backend=onnxruntime",
                             f"record.dir={root}", "engine.threads=1"])
    Pipeline(cfg, source=str(polyp_clip)).run()
    (name,) = [p.name for p in root.iterdir()]
    entries = [json.loads(x) for x in (root / name / "episodes.jsonl").read_text().splitlines()]
    (tmp_path / "secret.txt").write_text("outside the record")
    (root / "20990101-000000-link").symlink_to(root / name)               # a linked folder is not a procedure
    (root / name / "episode-9999.jpg").symlink_to(tmp_path / "secret.txt")

    async def fn(url):
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/api/procedures") as r:
                listing = await r.json()
            async with s.get(url + f"/api/procedures/{name}") as r:
                one = await r.json()
            async with s.get(url + "/procedures/") as r:
                page = await r.text()
            async with s.get(url + f"/procedures/{name}") as r:
                gallery = await r.text()
            async with s.get(url + f"/procedures/files/{name}/{entries[0]['image']}") as r:
                jpg = (r.status, r.content_type, await r.read())
            out = {}
            for path in (f"/procedures/files/{name}/../../secret.txt", f"/procedures/files/{name}/%2e%2e",
                         f"/procedures/files/{name}/episode-9999.jpg", "/procedures/files/20990101-000000-link/summary.json",
                         f"/procedures/files/{name}/..%2F..%2Fsecret.txt", "/api/procedures/..", "/procedures/current"):
                async with s.get(url + path) as r:
                    out[path] = (r.status, await r.text())
            return listing, one, page, gallery, jpg, out
    listing, one, page, gallery, jpg, out = asyncio.run(_serve(server_cfg(f"record.dir={root}", "web.uploads=false"), fn))
    assert [p["name"] for p in listing["procedures"]] == [name] and listing["procedures"][0]["finished"]
    assert listing["procedures"][0]["episodes"] == len(entries) >= 1 and listing["current"] == ""
    assert [e["image"] for e in one["gallery"]] == [e["image"] for e in entries] and one["frames"] == 150
    assert f'href="/procedures/{name}"' in page
    assert gallery.count('class="episode"') == len(entries) and entries[0]["image"] in gallery
    assert jpg[0] == 200 and jpg[1] == "image/jpeg" and cv2.imdecode(np.frombuffer(jpg[2], np.uint8), 1) is not None
    for path, (status, body) in out.items():
        assert status == 404 and "outside the record" not in body, (path, status)


def test_the_strip_reads_only_the_newest_episodes_of_a_long_procedure(tmp_path):
    """A box that runs for days: the live strip's poll (?last=8) reads the end of episodes.jsonl, whatever its length,
    and a line still being written is not shown."""
    from stream.web.procedures import TAIL_BLOCK, describe, episodes
    root = tmp_path / "rec"
    folder = root / "20261206-080000-tower"
    folder.mkdir(parents=True)
    (folder / "procedure.json").write_text(json.dumps({"source": "tower", "model_id": "m"}))
    lines = [json.dumps({"episode": n, "image": f"episode-{n:04d}.jpg", "start_s": n, "end_s": n + 1,
                         "duration_s": 1.0, "peak_score": 0.9}) for n in range(1, 3001)]
    (folder / "episodes.jsonl").write_text("\n".join(lines) + '\n{"episode": 3001, "ima')       # being written
    assert (folder / "episodes.jsonl").stat().st_size > 3 * TAIL_BLOCK
    assert [e["episode"] for e in episodes(folder, 8)] == list(range(2993, 3001))
    assert len(episodes(folder)) == 3000 and episodes(folder, 5000)[0]["episode"] == 1
    assert describe(folder)["episodes"] == 3000 and "gallery" not in describe(folder)

    async def fn(url):
        async with aiohttp.ClientSession() as s:
            got = {}
            for q in ("?last=8", "", "?last=0", "?last=x", "?last=1001"):
                async with s.get(url + f"/api/procedures/{folder.name}{q}") as r:
                    got[q] = (r.status, await r.json() if r.status == 200 else await r.text())
            return got
    got = asyncio.run(_serve(server_cfg(f"record.dir={root}", "web.uploads=false"), fn))
    assert got["?last=8"][0] == 200 and got["?last=8"][1]["episodes"] == 3000
    assert [e["episode"] for e in got["?last=8"][1]["gallery"]] == list(range(2993, 3001))
    assert len(got[""][1]["gallery"]) == 3000
    for q in ("?last=0", "?last=x", "?last=1001"):
        assert got[q][0] == 400 and "last: expected a whole number 1..1000" in got[q][1], q


@needs_chromium
def test_the_live_page_shows_the_current_procedures_alerts(polyp_clip, endpoint, tmp_path):
    from browser import Browser
    root = tmp_path / "rec"
    port = free_port()
    web = start_web(port, endpoint, "--set", f"record.dir={root}")
    pipe = start_pipeline(polyp_clip, endpoint, "--set", f"record.dir={root}")
    try:
        async def scenario():
            async with Browser() as b:
                await b.goto(f"http://127.0.0.1:{port}/")
                await b.wait_for("window.polypwatch.drawn > 3", 30)
                await b.wait_for("document.querySelectorAll('#thumbs img').length >= 1 && "
                                 "[...document.querySelectorAll('#thumbs img')].every(i => i.complete && i.naturalWidth > 0)",
                                 40)
                return json.loads(await b.eval(
                    "JSON.stringify({n: document.querySelectorAll('#thumbs img').length, "
                    "shown: !document.getElementById('strip').hidden, "
                    "w: document.querySelector('#thumbs img').naturalWidth, "
                    "link: document.getElementById('gallery').getAttribute('href'), p: window.polypwatch.procedure})"))
        info = asyncio.run(scenario())
    finally:
        stop(pipe)
        stop(web)
    (name,) = [p.name for p in root.iterdir()]
    assert info["p"]["name"] == name and info["link"] == f"/procedures/{name}" and not info["p"]["finished"]
    assert info["shown"] and info["n"] == min(8, info["p"]["episodes"]) and info["w"] == 480
