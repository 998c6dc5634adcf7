"""The procedure records (``record.dir``) for the browser: the current procedure's alert episodes and the list of
past procedures, each with its gallery. Read-only; a folder name from a request is checked before it is used."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}")
MAX_LISTED = 500


class NoSuchProcedure(LookupError):
    pass


def procedure_folder(root: Path, name: str) -> Path:
    """The folder of procedure ``name`` directly under ``root``; anything else (a path, a link, '..') is refused."""
    if not NAME.fullmatch(name) or ".." in name:
        raise NoSuchProcedure(name)
    p = root / name
    if p.is_symlink() or not (p / "procedure.json").is_file():
        raise NoSuchProcedure(name)
    return p


def _json(path: Path, default):
    """A JSON object from a record's file, or ``default`` (missing, unreadable, nested too deeply, not an object)."""
    try:
        v = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return default
    return v if isinstance(v, dict) else default


def _text(v, limit: int = 300) -> str:
    return v[:limit] if isinstance(v, str) else ""


def _number(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


TAIL_BLOCK = 64 * 1024


def _tail_lines(path: Path, n: int) -> list[bytes]:
    """The last ``n`` complete lines of a file, read back from its end (a line being written is left out)."""
    with path.open("rb") as f:
        end = f.seek(0, 2)
        buf = b""
        while end > 0 and buf.count(b"\n") <= n:
            start = max(0, end - TAIL_BLOCK)
            f.seek(start)
            buf = f.read(end - start) + buf
            end = start
    lines = buf.split(b"\n")[:-1]          # after the last newline: nothing, or a line not finished yet
    return lines[1:][-n:] if end > 0 else lines[-n:]     # the first may be cut when the file was not read whole


def _entries(lines) -> list[dict]:
    out = []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict) and NAME.fullmatch(str(e.get("image", ""))):
            out.append(e)
    return out


def episodes(folder: Path, last: int | None = None) -> list[dict]:
    """The gallery entries written so far (a line being written is skipped); with ``last``, only the newest ones,
    read from the end of the file: the live strip's poll costs the same after a day of episodes as after one."""
    path = folder / "episodes.jsonl"
    try:
        if last is not None:
            return _entries(_tail_lines(path, last))
        return _entries(path.read_bytes().split(b"\n"))
    except OSError:
        return []


def describe(folder: Path, with_episodes: bool = False, last: int | None = None) -> dict:
    """A procedure's summary; ``with_episodes``: its gallery (all, or the ``last`` newest). The count of episodes
    is the newest entry's number (the record numbers them 1, 2, ...), so only the end of the file is read."""
    proc = _json(folder / "procedure.json", {})
    summary = _json(folder / "summary.json", None)
    eps = episodes(folder, last if with_episodes else 1)
    newest = eps[-1].get("episode") if eps else 0
    count = newest if isinstance(newest, int) and not isinstance(newest, bool) and newest >= 0 else len(eps)
    record = (summary or {}).get("record")
    d = {"name": folder.name, "source": _text(proc.get("source")), "model_id": _text(proc.get("model_id")),
         "started_utc": _text(proc.get("started_utc"), 40), "episodes": count, "finished": summary is not None,
         "frames": _number((summary or {}).get("processed")), "seconds": _number((summary or {}).get("seconds")),
         "record_error": _text(record.get("error")) if isinstance(record, dict) else ""}
    if not proc:
        d["bad"] = "procedure.json is not a readable JSON object"
    if with_episodes:
        d["gallery"] = eps
    return d


def list_procedures(root: Path) -> list[dict]:
    """Every procedure under ``root``, newest first (the folder names start with the UTC start time)."""
    if not root.is_dir():
        return []
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and NAME.fullmatch(p.name)
                      and (p / "procedure.json").is_file()), key=lambda p: p.name, reverse=True)
    out = []
    for p in folders[:MAX_LISTED]:
        try:
            out.append(describe(p))
        except (OSError, ValueError, TypeError, AttributeError, RecursionError) as e:  # one entry, marked
            out.append({"name": p.name, "source": "", "model_id": "", "started_utc": "", "episodes": 0,
                        "finished": False, "frames": None, "seconds": None, "record_error": "",
                        "bad": f"cannot be described ({type(e).__name__})"})
    return out


def _when(d: dict) -> str:
    return html.escape(d["started_utc"].replace("T", " ").replace("Z", " UTC") or d["name"])


def list_html(procs: list[dict]) -> str:
    rows = []
    for d in procs:
        href = html.escape(f"/procedures/{d['name']}", quote=True)
        state = "recording" if not d["finished"] else f"{d['frames']} frames, {d['seconds'] or 0:.0f} s"
        rows.append(f"<tr><td><a href=\"{href}\">{_when(d)}</a></td><td>{html.escape(d['source'])}</td>"
                    f"<td>{d['episodes']}</td><td>{html.escape(state)}</td>"
                    f"<td>{html.escape(d.get('bad') or d['record_error'])}</td></tr>")
    body = "\n".join(rows) or "<tr><td colspan=5>no procedure recorded yet (record.dir)</td></tr>"
    return _page("Procedures", f"""<table class="list"><tr><th>started</th><th>source</th><th>alert episodes</th>
<th></th><th></th></tr>
{body}</table>""")


def gallery_html(d: dict) -> str:
    figs = []
    for e in d["gallery"]:
        src = html.escape(f"/procedures/files/{d['name']}/{e['image']}", quote=True)
        cap = (f"#{e.get('episode')} · {_clock(e.get('start_s'))}–{_clock(e.get('end_s'))} "
               f"({_number(e.get('duration_s')) or 0:.1f} s) · peak {_number(e.get('peak_score')) or 0:.3f}")
        figs.append(f'<figure class="episode"><a href="{src}"><img src="{src}" loading="lazy"></a>'
                    f"<figcaption>{html.escape(cap)}</figcaption></figure>")
    status = "still recording" if not d["finished"] else f"{d['frames']} frames, {d['seconds'] or 0:.0f} s"
    err = f'<p id="error">{html.escape(d["record_error"])}</p>' if d["record_error"] else ""
    return _page(f"Procedure {_when(d)}", f"""<p>Source {html.escape(d['source'])} · model {html.escape(d['model_id'])}
· {status} · {d['episodes']} alert episodes (the frame at each episode's peak score, with its boxes).</p>{err}
<div class="gallery">{''.join(figs) or '<p>no alert episode in this procedure</p>'}</div>
<p><a href="/procedures/{html.escape(d['name'], quote=True)}/review">review this procedure</a> ·
<a href="/procedures/files/{html.escape(d['name'], quote=True)}/detections.jsonl">detection log</a> ·
<a href="/procedures/">all procedures</a></p>""")


def _clock(s) -> str:
    s = float(_number(s) or 0)
    return f"{int(s // 60)}:{s % 60:04.1f}"


def _page(title: str, body: str) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>polypwatch · {html.escape(title)}</title>
<link rel="stylesheet" href="/static/style.css"></head><body>
<nav><a href="/">live</a> <a href="/check">check an image or clip</a> <a href="/reports/">QA reports</a>
<a href="/procedures/">procedures</a></nav>
<h1>{html.escape(title)}</h1>{body}</body></html>"""
