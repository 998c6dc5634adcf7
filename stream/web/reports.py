"""The QA reports written by ``polypwatch replay``, listed for the browser (files are served read-only)."""
from __future__ import annotations

import html
import json
import os
import stat
from pathlib import Path
from urllib.parse import quote

MAX_DEPTH = 4
MAX_REPORTS = 2000


def find_reports(root: Path) -> list[dict]:
    """Every folder under ``root`` (at most MAX_DEPTH deep, symlinks not followed) holding a report.html:
    a single replay (metrics.json) or a study (summary.json). Newest first. An entry that cannot be described (a
    report.html that is a link, a link to nowhere, a metrics.json nested too deeply) is listed with ``bad`` saying
    why and is not linked: one bad entry never turns the list into an error."""
    out = []
    root = root.resolve()
    for folder, dirs, files in os.walk(root, followlinks=False):
        rel = Path(folder).relative_to(root)
        if len(rel.parts) >= MAX_DEPTH:
            dirs[:] = []
        dirs.sort()
        if "report.html" not in files:
            continue
        kind = "study" if "summary.json" in files else "replay"
        st = os.lstat(Path(folder, "report.html"))
        entry = {"path": rel.as_posix(), "kind": kind, "mtime": st.st_mtime}
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            entry["bad"] = "report.html is a link or not a file: not served"
        else:
            entry.update(_headline(Path(folder), kind))
        out.append(entry)
        if len(out) >= MAX_REPORTS:
            break
    out.sort(key=lambda e: -e["mtime"])
    return out


def _headline(folder: Path, kind: str) -> dict:
    """A few numbers for the list; a missing or broken JSON file gives none (the report itself still opens)."""
    try:
        if kind == "study":
            s = json.loads((folder / "summary.json").read_text())
            return {"inputs": len(s.get("inputs", [])), "failed": sum(1 for i in s.get("inputs", [])
                                                                        if i.get("status") == "failed")}
        m = json.loads((folder / "metrics.json").read_text())
        return {"frames": m.get("frames"), "source": m.get("source", "")}
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):
        return {"bad": f"{'summary' if kind == 'study' else 'metrics'}.json cannot be read (the report may still open)"}


def index_html(reports: list[dict], files_prefix: str) -> str:
    rows = []
    for e in reports:
        p = html.escape(e["path"] if e["path"] != "." else "")
        url = f"{files_prefix}/{quote(e['path'])}/report.html" if e["path"] != "." else f"{files_prefix}/report.html"
        href = html.escape(url, quote=True)
        detail = (f"{e.get('inputs', '?')} inputs, {e.get('failed', 0)} failed" if e["kind"] == "study"
                  else f"{e.get('frames', '?')} frames")
        if "bad" in e and "link" in e["bad"]:
            rows.append(f"<tr class=\"bad\"><td>{p or '(top folder)'}</td><td>{e['kind']}</td>"
                        f"<td>{html.escape(e['bad'])}</td></tr>")
            continue
        detail = f"{detail} ({e['bad']})" if "bad" in e else detail
        rows.append(f"<tr><td><a href=\"{href}\">{p or '(top folder)'}</a></td><td>{e['kind']}</td>"
                    f"<td>{html.escape(detail)}</td></tr>")
    body = "\n".join(rows) or "<tr><td colspan=3>no report.html under this folder yet</td></tr>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>polypwatch QA reports</title>
<link rel="stylesheet" href="/static/style.css"></head><body>
<nav><a href="/">live</a> <a href="/check">check an image or clip</a> <a href="/reports/">QA reports</a> <a href="/procedures/">procedures</a></nav>
<h1>QA reports</h1><table class="list"><tr><th>report</th><th>kind</th><th></th></tr>
{body}</table><p><a href="{files_prefix}/">browse the folder</a></p></body></html>"""
