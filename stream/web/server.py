"""The HTTP server of ``polypwatch web`` (aiohttp): pages, the live WebSocket, uploads, reports, access token.

Longer than 250 lines: one aiohttp application, its middleware and its route handlers, each a few lines; the work
they hand off lives elsewhere (hub.py, check.py, reports.py)."""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import WSMsgType, web

from engines.errors import PolypwatchError
from stream.web.check import Checker, CheckLimits, UploadError
from stream.endpoints import is_loopback_host
from stream.web.config import parse_listen
from stream.web.hub import Hub
from stream.web.viewer import Outgoing, Viewer
from stream.web.procedures import NoSuchProcedure, describe, gallery_html, list_html, list_procedures, procedure_folder
from stream.web.reports import find_reports, index_html

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
COOKIE = "polypwatch_token"
HUB = web.AppKey("hub", Hub)
CFG = web.AppKey("cfg", object)
CHECKER = web.AppKey("checker", object)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
CHECK_SLOTS = web.AppKey("check_slots", asyncio.Semaphore)
PENDING = web.AppKey("pending_checks", list)
PROCEDURE_FILE = re.compile(r"(episode-\d{4,6}\.jpg|detections\.jsonl|episodes\.jsonl|summary\.json|procedure\.json)")
PAGE = re.compile(r"/procedures/[A-Za-z0-9][A-Za-z0-9._-]{0,120}(/review)?")     # pages opened with ?token=
MAX_LAST = 1000                 # /api/procedures/NAME?last=N: the newest N episodes (the live strip asks for 8)
MAX_PENDING_CHECKS = 4          # uploads being read or checked at once; more are refused (503)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _token_middleware(token: str):
    @web.middleware
    async def check_token(request: web.Request, handler):
        if not token:
            return await handler(request)
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            if request.method == "GET" and (request.path in ("/", "/check", "/reports/", "/procedures/")
                                            or PAGE.fullmatch(request.path)):
                query = request.query.copy()
                query.popall("token")
                resp = web.HTTPFound(str(request.rel_url.with_query(query)))   # keep it out of the address bar
                resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
                raise resp
            return await handler(request)
        auth = request.headers.get("Authorization", "")
        candidates = [request.cookies.get(COOKIE, ""), auth[7:] if auth.startswith("Bearer ") else ""]
        if any(c and hmac.compare_digest(c.encode(), token.encode()) for c in candidates):
            return await handler(request)
        return _json_error(401, "access token required: open the page as /?token=TOKEN or send "
                                "'Authorization: Bearer TOKEN'")
    return check_token


# ---------------------------------------------------------------------------------------------- pages
async def live_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "live.html")


async def check_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "check.html")


async def api_state(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    checker = request.app[CHECKER]
    return web.json_response({"style": hub.style(), "last": hub.last_state or None, "server": hub.counters(),
                              "viewers": [v.counters() for v in hub.viewers],
                              "uploads": checker is not None,
                              "check_model": None if checker is None else
                              {"model_id": checker.model_id, "threshold": checker.threshold, **checker.precision},
                              "reports": bool(request.app[CFG].extra["web"].reports_dir)})


async def api_snapshot(request: web.Request) -> web.Response:
    msg = request.app[HUB].latest
    if msg is None:
        return _json_error(404, "no frame received from the pipeline yet (is it running with "
                                "publisher.send_frames: true?)")
    return web.Response(body=msg.jpeg, content_type="image/jpeg",
                        headers={"X-Polypwatch-Frame": json.dumps({"seq": msg.header["seq"],
                                                                   "verdict": msg.header["verdict"]})})


# ---------------------------------------------------------------------------------------------- live
async def _send_loop(ws: web.WebSocketResponse, viewer: Viewer) -> None:
    while not ws.closed:
        await viewer.wake.wait()
        viewer.wake.clear()
        while (msg := viewer.take()) is not None:
            extra = {"viewer": viewer.counters()}
            if msg.kind == "frame":
                await ws.send_bytes(msg.binary(extra))
            else:
                await ws.send_str(msg.text(extra))


async def live_socket(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    web_cfg = request.app[CFG].extra["web"]
    if len(hub.viewers) >= web_cfg.max_viewers:
        return _json_error(503, f"{web_cfg.max_viewers} viewers already connected (web.max_viewers)")
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=4096)
    await ws.prepare(request)
    viewer = Viewer(web_cfg.max_in_flight)
    await ws.send_str(json.dumps({"type": "hello", "style": hub.style()}))
    hub.viewers.add(viewer)
    peer = request.remote
    log.info("viewer %s connected (%d now)", peer, len(hub.viewers))
    sender = asyncio.create_task(_send_loop(ws, viewer))
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                m = json.loads(msg.data)
                kind = m.get("type")
            except (ValueError, AttributeError):
                continue                       # a viewer's bad message is ignored, never fatal
            if kind == "ack":
                viewer.ack()
            elif kind == "ping":
                viewer.offer(Outgoing("state", {"type": "pong", "t": m.get("t")}))
    finally:
        hub.viewers.discard(viewer)
        sender.cancel()
        log.info("viewer %s left (%s): %s", peer, "no answer to pings" if ws.close_code == 1006 else
                 f"close code {ws.close_code}", viewer.counters())
    return ws


# ---------------------------------------------------------------------------------------------- uploads
async def _read_upload(request: web.Request, max_bytes: int) -> tuple[bytes, str]:
    if not request.content_type.startswith("multipart/"):
        raise UploadError("expected a multipart/form-data upload with a 'file' field")
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            raise UploadError("the upload has no 'file' field")
        if getattr(part, "name", None) == "file":
            break
    data = bytearray()
    while chunk := await part.read_chunk(256 * 1024):
        data += chunk
        if len(data) > max_bytes:
            raise UploadError(f"the upload is larger than the limit of {max_bytes / 1e6:.1f} MB "
                              f"(web.max_upload_mb)", status=413)
    return bytes(data), Path(part.filename or "upload").name


async def api_check(request: web.Request) -> web.Response:
    checker: Checker | None = request.app[CHECKER]
    if checker is None:
        return _json_error(404, "uploads are switched off on this server (web.uploads: false)")
    pending = request.app[PENDING]
    if pending[0] >= MAX_PENDING_CHECKS:
        return _json_error(503, "busy: other checks are running; try again shortly")
    pending[0] += 1
    try:
        data, name = await _read_upload(request, checker.limits.max_bytes)
        async with request.app[CHECK_SLOTS]:
            res = await asyncio.get_running_loop().run_in_executor(request.app[EXECUTOR], checker.check, data, name)
    except UploadError as e:
        return _json_error(e.status, str(e))
    except PolypwatchError as e:
        log.warning("check failed: %s", e)
        return _json_error(422, f"the model could not check this file: {e}")
    except Exception:
        log.exception("check of an upload failed")
        return _json_error(500, "internal error while checking this file (the server log has the details)")
    finally:
        pending[0] -= 1
    return web.json_response({**res.result,
                              "preview": "data:image/jpeg;base64," + base64.b64encode(res.preview_jpeg).decode()})


# ---------------------------------------------------------------------------------------------- reports
async def reports_index(request: web.Request) -> web.Response:
    root = request.app[CFG].extra["web"].reports_dir
    if not root:
        return web.Response(status=404, text="no reports folder configured (polypwatch web --reports DIR)")
    reports = await asyncio.get_running_loop().run_in_executor(None, find_reports, Path(root))
    if request.query.get("format") == "json":
        return web.json_response(reports)
    return web.Response(text=index_html(reports, "/reports/files"), content_type="text/html")


# ---------------------------------------------------------------------------------------------- procedure records
def _record_root(request: web.Request) -> Path | None:
    d = request.app[CFG].record.dir
    return Path(d) if d else None


def _current(request: web.Request) -> str:
    status = (request.app[HUB].last_state or {}).get("status") or {}
    return str(status.get("procedure") or "")


async def _procedure(request: web.Request) -> dict:
    root, name = _record_root(request), request.match_info["name"]
    if name == "current":
        name = _current(request)
    if root is None:
        raise web.HTTPNotFound(text="no procedure record configured (record.dir)")
    try:
        folder = procedure_folder(root, name)
    except NoSuchProcedure:
        raise web.HTTPNotFound(text=f"no procedure {name!r} under record.dir") from None
    last = request.query.get("last")
    if last is not None and not (last.isdigit() and 1 <= int(last) <= MAX_LAST):
        raise web.HTTPBadRequest(text=f"last: expected a whole number 1..{MAX_LAST} (the newest episodes), got {last!r}")
    return await asyncio.get_running_loop().run_in_executor(None, describe, folder, True,
                                                            None if last is None else int(last))


async def api_procedures(request: web.Request) -> web.Response:
    root = _record_root(request)
    procs = [] if root is None else await asyncio.get_running_loop().run_in_executor(None, list_procedures, root)
    return web.json_response({"record_dir": root is not None, "current": _current(request), "procedures": procs})


async def api_procedure(request: web.Request) -> web.Response:
    return web.json_response(await _procedure(request))


async def procedures_page(request: web.Request) -> web.Response:
    root = _record_root(request)
    if root is None:
        return web.Response(status=404, text="no procedure record configured (record.dir)")
    procs = await asyncio.get_running_loop().run_in_executor(None, list_procedures, root)
    return web.Response(text=list_html(procs), content_type="text/html")


async def procedure_file(request: web.Request) -> web.FileResponse:
    """A gallery image or the detection log of one procedure: one file name, directly in that folder."""
    root, name, file = _record_root(request), request.match_info["name"], request.match_info["file"]
    try:
        folder = procedure_folder(root, name) if root is not None else None
    except NoSuchProcedure:
        folder = None
    path = None if folder is None or not PROCEDURE_FILE.fullmatch(file) else folder / file
    if path is None or path.is_symlink() or not path.is_file():
        raise web.HTTPNotFound(text="no such file in this procedure's record")
    return web.FileResponse(path)


async def procedure_page(request: web.Request) -> web.Response:
    return web.Response(text=gallery_html(await _procedure(request)), content_type="text/html")


# ---------------------------------------------------------------------------------------------- the app
def make_app(cfg) -> web.Application:
    w = cfg.extra["web"]
    app = web.Application(middlewares=[_token_middleware(w.access_token())], client_max_size=1024 * 1024)
    app[CFG] = cfg
    app[HUB] = Hub(w, cfg.extra["overlay"])
    app[CHECKER] = None
    app[PENDING] = [0]
    app[EXECUTOR] = ThreadPoolExecutor(1, thread_name_prefix="web-check")
    if w.uploads:
        app[CHECKER] = Checker(cfg, CheckLimits(int(w.max_upload_mb * 1e6), w.max_clip_frames, w.max_clip_seconds))
    app.router.add_get("/", live_page)
    app.router.add_get("/check", check_page)
    app.router.add_get("/ws", live_socket)
    app.router.add_get("/api/state", api_state)
    app.router.add_get("/api/snapshot.jpg", api_snapshot)
    app.router.add_post("/api/check", api_check)
    app.router.add_get("/reports/", reports_index)
    app.router.add_static("/static", STATIC, follow_symlinks=False)
    if w.reports_dir:
        app.router.add_static("/reports/files", Path(w.reports_dir), show_index=True, follow_symlinks=False)
    app.router.add_get("/api/procedures", api_procedures)
    app.router.add_get("/api/procedures/{name}", api_procedure)
    app.router.add_get("/procedures/", procedures_page)
    app.router.add_get("/procedures/files/{name}/{file}", procedure_file)
    app.router.add_get("/procedures/{name}", procedure_page)
    from stream.web import site_truth
    site_truth.register(app, CFG, HUB)

    async def on_startup(app: web.Application) -> None:
        app[CHECK_SLOTS] = asyncio.Semaphore(1)
        app[HUB].start(asyncio.get_running_loop())

    async def on_cleanup(app: web.Application) -> None:
        app[HUB].stop()
        app[EXECUTOR].shutdown(wait=True)
        if app[CHECKER] is not None:
            app[CHECKER].close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def serve(cfg, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set. Binding problems raise ConfigError naming web.listen."""
    from engines.errors import ConfigError
    w = cfg.extra["web"]
    host, port = parse_listen("web.listen", w.listen)
    app = make_app(cfg)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise ConfigError(f"web.listen: cannot listen on {w.listen!r} ({e.strerror or e})") from None
    bound = runner.addresses[0] if runner.addresses else (host, port)
    url = f"http://{host}:{bound[1]}/"
    if not is_loopback_host(host):
        log.warning("listening on %s, which is not loopback: every request needs the access token", url)
    elif w.access_token():
        log.info("access token required on every request")
    log.info("serving %s (live from %s)", url, w.endpoint)
    print(f"polypwatch web: {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
