"""The site's truth in the browser: marks during a procedure ("polyp here": ``POST /api/mark``, the live page's
button, a foot pedal) and the review page after it (``/procedures/NAME/review``): every alert episode and every mark
as a strip of footage frames, answered polyp / not a polyp / unsure, with the polyp's place clicked or dragged.

Reading stays as every other page; writing (a mark, an answer) needs the access token (``web.token``): without one
configured, nothing is written and the page says how to set it. Answers are appended to the procedure's
``review.jsonl`` with the reviewer's name and the time (stream/truth_files.py), never rewritten.
"""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aiohttp import web

from stream.truth_files import TruthError, append_answer, append_mark, cases, latest_answers, read_review
from stream.web.procedures import NoSuchProcedure, procedure_folder

FOOTAGE_FILE = re.compile(r"\d{1,12}\.jpg")
STATIC = Path(__file__).parent / "static"
KEYS: dict = {}                     # the server's app keys for its configuration and hub (set by ``register``)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _root(request: web.Request) -> Path | None:
    d = request.app[KEYS["cfg"]].record.dir
    return Path(d) if d else None


def _may_write(request: web.Request) -> web.Response | None:
    """None when this request may write; else the answer (the token middleware has checked the token itself)."""
    if not request.app[KEYS["cfg"]].extra["web"].access_token():
        return _error(403, "writing (marks, reviews) needs an access token: start polypwatch web with web.token_file "
                           "or POLYPWATCH_WEB_TOKEN and open the page as /?token=TOKEN")
    return None


def _folder(request: web.Request, name: str) -> Path:
    root = _root(request)
    if root is None:
        raise web.HTTPNotFound(text="no procedure record configured (record.dir)")
    try:
        return procedure_folder(root, name)
    except NoSuchProcedure:
        raise web.HTTPNotFound(text=f"no procedure {name[:80]!r} under record.dir") from None


async def api_mark(request: web.Request) -> web.Response:
    """Mark "polyp here" at the newest frame the detector has published, in the procedure being recorded."""
    refused = _may_write(request)
    if refused is not None:
        return refused
    hub = request.app[KEYS["hub"]]
    state = (hub.last_state or {}).get("status") or {}
    name, det = str(state.get("procedure") or ""), hub.latest_detection()
    if _root(request) is None or not name:
        return _error(409, "no procedure is being recorded (record.dir, and a running pipeline): the mark was not kept")
    if det is None:
        return _error(503, "no detection has arrived yet: the mark has no frame to belong to")
    by = request.query.get("by", "web")
    if not re.fullmatch(r"[a-z-]{1,20}", by):
        return _error(400, "by: expected a short lower-case name such as web, pedal or overlay")
    try:
        entry = await asyncio.get_running_loop().run_in_executor(
            None, append_mark, _folder(request, name), by, det.seq, det.frame_index, det.t_capture_ns)
    except TruthError as e:
        return _error(409, str(e))
    return web.json_response({"procedure": name, **entry})


def review_state(folder: Path) -> dict:
    answers, edited = read_review(folder)
    return {"name": folder.name, "finished": (folder / "summary.json").is_file(), "cases": cases(folder),
            "answers": answers, "latest": latest_answers(answers), "edited_at_line": edited}


async def api_review(request: web.Request) -> web.Response:
    folder = _folder(request, request.match_info["name"])
    return web.json_response(await asyncio.get_running_loop().run_in_executor(None, review_state, folder))


async def api_review_post(request: web.Request) -> web.Response:
    refused = _may_write(request)
    if refused is not None:
        return refused
    folder = _folder(request, request.match_info["name"])
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "expected a JSON object: {case, answer, reviewer, frame_index?, box?}")
    if not isinstance(body, dict) or set(body) - {"case", "answer", "reviewer", "frame_index", "box"}:
        return _error(400, "expected a JSON object with the keys case, answer, reviewer, frame_index, box")
    try:
        entry = await asyncio.get_running_loop().run_in_executor(
            None, lambda: append_answer(folder, body.get("case"), body.get("answer"), body.get("reviewer"),
                                        body.get("box"), body.get("frame_index")))
    except TruthError as e:
        status = 409 if "still being recorded" in str(e) or "edited outside" in str(e) else 400
        return _error(status, str(e))
    return web.json_response(entry)


async def footage_file(request: web.Request) -> web.FileResponse:
    folder = _folder(request, request.match_info["name"])
    file = request.match_info["file"]
    path = folder / "footage" / file
    if not FOOTAGE_FILE.fullmatch(file) or (folder / "footage").is_symlink() or path.is_symlink() or not path.is_file():
        raise web.HTTPNotFound(text="no such footage frame in this procedure's record")
    return web.FileResponse(path)


async def review_page(request: web.Request) -> web.Response:
    _folder(request, request.match_info["name"])
    return web.Response(text=(STATIC / "review.html").read_text(), content_type="text/html")


def register(app: web.Application, cfg_key, hub_key) -> None:
    KEYS.update(cfg=cfg_key, hub=hub_key)
    app.router.add_post("/api/mark", api_mark)
    app.router.add_get("/api/procedures/{name}/review", api_review)
    app.router.add_post("/api/procedures/{name}/review", api_review_post)
    app.router.add_get("/procedures/files/{name}/footage/{file}", footage_file)
    app.router.add_get("/procedures/{name}/review", review_page)
