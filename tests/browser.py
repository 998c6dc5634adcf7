"""A real headless Chromium driven over the DevTools protocol (its WebSocket, with aiohttp): no test framework
of its own to download. ``chromium_path()`` is None where Debian's chromium is not installed (tests skip)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import aiohttp
import cv2
import numpy as np

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
         "--remote-allow-origins=*")


def chromium_path() -> str | None:
    for name in CANDIDATES:
        p = shutil.which(name)
        if p:
            return p
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """``async with Browser(size=(w, h)) as b: await b.goto(url); await b.eval('1+1'); await b.screenshot()``"""

    def __init__(self, size: tuple[int, int] = (1280, 900)):
        self.size = size
        self._ids = 0
        self._pending: dict[int, asyncio.Future] = {}

    async def __aenter__(self) -> "Browser":
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("no chromium on PATH")
        self._dir = tempfile.mkdtemp(prefix="polypwatch-chromium-")
        port = _free_port()
        self.proc = subprocess.Popen([exe, *FLAGS, f"--remote-debugging-port={port}",
                                      f"--user-data-dir={self._dir}",
                                      f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.http = aiohttp.ClientSession()
        t_end = time.monotonic() + 30
        while True:
            try:
                async with self.http.get(f"http://127.0.0.1:{port}/json/list") as r:
                    pages = [p for p in await r.json() if p.get("type") == "page"]
                if pages:
                    break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > t_end:
                raise RuntimeError("chromium did not open its DevTools port")
            await asyncio.sleep(0.2)
        self.ws = await self.http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=64 << 20)
        self._reader = asyncio.create_task(self._read())
        await self.call("Page.enable")
        await self.call("Runtime.enable")
        await self.call("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1],
                        deviceScaleFactor=1, mobile=False)
        return self

    async def __aexit__(self, *exc) -> None:
        self._reader.cancel()
        await self.ws.close()
        await self.http.close()
        # Chromium's helpers (zygote, renderer, crash handler) live in the session we started and may still write
        # to the profile after the main process exits: end the whole group before removing the folder.
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        for _ in range(20):                 # a helper killed just now may still be closing its files
            shutil.rmtree(self._dir, ignore_errors=True)
            if not os.path.exists(self._dir):
                break
            await asyncio.sleep(0.1)

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    async def _read(self) -> None:
        async for msg in self.ws:
            m = json.loads(msg.data)
            fut = self._pending.pop(m.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(m)

    async def call(self, method: str, **params) -> dict:
        self._ids += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[self._ids] = fut
        await self.ws.send_str(json.dumps({"id": self._ids, "method": method, "params": params}))
        m = await asyncio.wait_for(fut, 30)
        if "error" in m:
            raise RuntimeError(f"{method}: {m['error']}")
        return m["result"]

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", 20)

    async def eval(self, expression: str):
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails'].get('text')}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, timeout: float) -> float:
        """Poll ``expression`` until truthy; returns the monotonic time it first was."""
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            try:
                if await self.eval(expression):
                    return time.monotonic()
            except RuntimeError:
                pass
            await asyncio.sleep(0.05)
        raise TimeoutError(f"waited {timeout} s for: {expression}")

    async def screenshot(self) -> np.ndarray:
        """The viewport as a BGR image (device pixels = CSS pixels)."""
        r = await self.call("Page.captureScreenshot", format="png")
        return cv2.imdecode(np.frombuffer(base64.b64decode(r["data"]), np.uint8), cv2.IMREAD_COLOR)


async def set_file(b: Browser, selector: str, path: str) -> None:
    """Choose ``path`` in the page's <input type=file> (fires its change event, as a user's choice does)."""
    doc = await b.call("DOM.getDocument")
    node = await b.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector=selector)
    await b.call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[path])
