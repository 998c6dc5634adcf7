"""``tools/soak --web-alone``: the web server by itself for a long, compressed procedure, to see whether its memory
is flat. Without the detector the two cores are free for it, and a procedure of days can be played in an hour.

In this process: a ZeroMQ publisher with the pipeline's wire format (raw frames of a generated clip at ``--fps``, a
detection per frame, a heartbeat a second) and the real procedure record (``stream.record``) writing an alert episode
every ``--episode-s``. Against the real ``polypwatch web`` (a subprocess): one WebSocket client that acknowledges every
frame and pings each second, and that polls the current procedure's strip every 3 s and fetches its new thumbnails,
as the live page does. Every ``--sample-s``: the server's memory and open files and the client's counts.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import aiohttp
import cv2
import zmq

from engines.runtime.alerts import AlertState
from engines.runtime.result import Box
from stream.config import RecordConfig
from stream.detection import Detection
from stream.lab.bench.procs import Proc
from stream.lab.bench.scenarios import ROOT, free_endpoint, make_clip
from stream.lab.bench.soak_probe import folder_mb, open_fds, rss_mb
from stream.record import ProcedureRecord
from stream.wire import FrameMessage, Status, encode_detection, encode_frame, encode_status

STRIP = 8                       # thumbnails the live page shows (live.js STRIP_MAX)


class Client:
    """The live page's traffic, from a thread with its own event loop."""

    def __init__(self, base: str):
        self.base = base
        self.frames = self.acks = self.strip_polls = self.thumbs = self.errors = 0
        self.episodes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _main(self) -> None:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(self._live(http), self._strip(http))

    async def _live(self, http: aiohttp.ClientSession) -> None:
        while not self._stop.is_set():
            try:
                async with http.ws_connect(self.base.replace("http", "ws") + "/ws") as ws:
                    last_ping = 0.0
                    while not self._stop.is_set():
                        if time.monotonic() - last_ping >= 1.0:
                            await ws.send_str(json.dumps({"type": "ping", "t": time.monotonic() * 1e3}))
                            last_ping = time.monotonic()
                        try:
                            msg = await ws.receive(timeout=0.5)
                        except asyncio.TimeoutError:
                            continue
                        if msg.type == aiohttp.WSMsgType.BINARY:
                            n = int.from_bytes(msg.data[:4], "big")
                            seq = json.loads(msg.data[4:4 + n]).get("seq")
                            self.frames += 1
                            await ws.send_str(json.dumps({"type": "ack", "seq": seq}))
                            self.acks += 1
                        elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            break
            except aiohttp.ClientError:
                self.errors += 1
                await asyncio.sleep(1.0)

    async def _strip(self, http: aiohttp.ClientSession) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(3.0)
            try:
                async with http.get(f"{self.base}/api/procedures/current?last={STRIP}") as r:
                    if r.status != 200:
                        self.errors += 1
                        continue
                    d = await r.json()
                self.strip_polls += 1
                if d["episodes"] != self.episodes:
                    self.episodes = d["episodes"]
                    for e in d["gallery"][-STRIP:]:
                        async with http.get(f"{self.base}/procedures/files/{d['name']}/{e['image']}") as r:
                            await r.read()
                            self.thumbs += r.status == 200
            except (aiohttp.ClientError, ValueError, KeyError):
                self.errors += 1


def run(args) -> dict:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.size.split("x"))
    clip = make_clip(out, args.fps, (w, h), 4.0, seed=33)
    cap = cv2.VideoCapture(str(clip.path))
    images = []
    while len(images) < 4 * args.fps and (im := cap.read()[1]) is not None:
        images.append(im)
    cap.release()
    ep, port = free_endpoint(), int(free_endpoint().rsplit(":", 1)[1])
    record_dir = out / "record"
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 4)
    pub.bind(ep)
    rec = ProcedureRecord(RecordConfig(dir=str(record_dir), max_mb=args.record_max_mb), "web-soak", "web-soak")
    web = Proc("web", ["-m", "stream", "web", "--listen", f"127.0.0.1:{port}", "--connect", ep,
                       "--set", f"record.dir={record_dir}"], str(ROOT))
    time.sleep(2.0)
    client = Client(f"http://127.0.0.1:{port}")
    period_ns, ep_frames = int(1e9 / args.fps), max(1, int(args.episode_s * args.fps))
    samples = []
    t0 = time.monotonic_ns()
    next_sample, next_status, seq = t0 + int(args.sample_s * 1e9), t0, 0
    try:
        while (now := time.monotonic_ns()) - t0 < args.minutes * 60e9:
            img = images[seq % len(images)]
            on = seq % ep_frames < min(10, ep_frames - 1)           # a 10-frame alert episode per period
            d = Detection(seq, now, "web-soak", 0.9 if on else 0.1, AlertState.ON if on else AlertState.OFF,
                          (Box(0.3, 0.3, 0.6, 0.6, 0.9),) if on else (), "web-soak",
                          {"capture": now, "publish": now + 1_000_000})
            pub.send_multipart(encode_frame(FrameMessage(seq, now, "web-soak", img), "raw"), copy=False)
            pub.send_multipart(encode_detection(d))
            rec.on_detection(d, img)
            if now >= next_status:
                pub.send_multipart(encode_status(Status("running", now, "web-soak", "web-soak", "none", args.fps,
                                                        seq, budget_ms=1000 / args.fps, record="ok",
                                                        procedure=rec.folder.name)))
                next_status += 1_000_000_000
            if now >= next_sample:
                samples.append({"t_s": round((now - t0) / 1e9, 1), "rss_web_mb": rss_mb(web.p.pid),
                                "fds_web": open_fds(web.p.pid), "frames_sent": seq + 1, "client_frames": client.frames,
                                "strip_polls": client.strip_polls, "thumbs": client.thumbs,
                                "episodes": rec.stats.episodes, "client_errors": client.errors,
                                "record_mb": folder_mb(record_dir)})
                print(json.dumps(samples[-1]), flush=True)
                next_sample += int(args.sample_s * 1e9)
            seq += 1
            time.sleep(max(0.0, (t0 + seq * period_ns - time.monotonic_ns()) / 1e9))
    finally:
        client.close()
        web.stop()
        res = web.wait(30)
        rec.close({"web_soak": True})
        pub.close(0)
    return {"samples": samples, "web": res.__dict__, "minutes": args.minutes, "fps": args.fps, "size": args.size,
            "episode_s": args.episode_s}
