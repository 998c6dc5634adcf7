"""A study's summary: ``summary.json`` (every input, its status and error), ``summary.md`` and a self-contained
``report.html`` (per-input table sortable by any column, pooled metrics with 95% confidence intervals, links to
each input's report)."""
from __future__ import annotations

import html
import json
from pathlib import Path

from engines.lab.evaluation.metrics import wilson
from stream.lab.qa.study import JobResult

def row(r: JobResult) -> dict:
    m = r.metrics or {}
    pol, fa, alert = m.get("polyps", {}), m.get("false_alarms", {}), m.get("frame_alert", {})
    lat = m.get("latency_ms", {}).get("capture_to_publish", {})
    frames, processed, dropped = m.get("frames"), m.get("processed"), m.get("dropped", 0)
    said = m.get("container_frames", frames)        # a file that holds fewer frames than its container says
    ended_early = bool(m) and processed is not None and said is not None and processed + dropped < said
    return {"input": r.name, "path": r.path, "status": r.status, "error": r.error or None,
            "ended_early": ended_early, "frames": frames, "processed": processed, "dropped": dropped,
            "polyps": pol.get("count"), "detected": pol.get("detected"),
            "detection_rate": pol.get("detection_rate"),
            "detection_rate_ci95": wilson(pol.get("detected", 0), pol["count"]) if pol.get("count") else None,
            "sensitivity_alert": alert.get("sensitivity"), "specificity_alert": alert.get("specificity"),
            "false_alarms_per_min": fa.get("per_minute"), "latency_p50_ms": lat.get("p50"),
            "latency_p99_ms": lat.get("p99"), "model_id": m.get("model_id"), "precision": m.get("precision"),
            "seconds": round(r.seconds, 2),
            "report": f"{r.name}/report.html" if r.status != "failed" else None}


def pooled(results: list[JobResult]) -> dict:
    ms = [r.metrics for r in results if r.metrics and "polyps" in r.metrics]
    pc = sum(m["polyps"]["count"] for m in ms)
    pd = sum(m["polyps"]["detected"] for m in ms)
    fa = {k: sum(m["frame_alert"].get(k, 0) for m in ms) for k in ("tp", "fn", "tn", "fp")}
    minutes = sum((m.get("duration_s") or 0) / 60 for m in ms)
    fas = sum(m["false_alarms"]["count"] for m in ms)
    precisions = sorted({r.metrics["precision"] for r in results if r.metrics and r.metrics.get("precision")})
    return {"inputs_with_truth": len(ms), "precision": precisions, "polyps": pc, "polyps_detected": pd,
            "polyp_detection_rate": round(pd / pc, 4) if pc else None, "polyp_detection_rate_ci95": wilson(pd, pc),
            "frame_sensitivity_alert": round(fa["tp"] / (fa["tp"] + fa["fn"]), 4) if fa["tp"] + fa["fn"] else None,
            "frame_sensitivity_alert_ci95": wilson(fa["tp"], fa["tp"] + fa["fn"]),
            "frame_specificity_alert": round(fa["tn"] / (fa["tn"] + fa["fp"]), 4) if fa["tn"] + fa["fp"] else None,
            "frame_specificity_alert_ci95": wilson(fa["tn"], fa["tn"] + fa["fp"]),
            "minutes": round(minutes, 3), "false_alarms": fas,
            "false_alarms_per_min": round(fas / minutes, 4) if minutes else None,
            "note": "frame-level intervals treat frames as independent, which they are not: read them as a lower "
                    "bound on the uncertainty; the polyp-level interval is the one the CADe literature reports"}


def write_study(out: Path, results: list[JobResult], meta: dict) -> dict:
    rows = [row(r) for r in results]
    summary = {"study": meta, "counts": {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")},
               "ended_early": [r["input"] for r in rows if r["ended_early"]], "pooled": pooled(results),
               "inputs": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(markdown(summary) + "\n")
    (out / "report.html").write_text(page(summary))
    return summary


COLUMNS = ("input", "status", "frames", "processed", "polyps", "detected", "detection_rate", "sensitivity_alert",
           "specificity_alert", "false_alarms_per_min", "latency_p50_ms", "latency_p99_ms")


def _cell(v) -> str:
    """A markdown table cell: one line, its pipes escaped (an input's name may hold either)."""
    if v is None:
        return "–"
    text = " ".join(str(v).split())                        # newlines and tabs become spaces
    return text.replace("\\", "\\\\").replace("|", "\\|")


def markdown(s: dict) -> str:
    lines = [f"Study: {s['counts']['done']} done, {s['counts']['skipped']} finished earlier, "
             f"{s['counts']['failed']} failed; model {s['study'].get('model_id')}, precision "
             f"{', '.join(s['study'].get('precision') or ['–'])}", "",
             "| " + " | ".join(COLUMNS) + " | error |", "|" + "---|" * (len(COLUMNS) + 1)]
    for r in s["inputs"]:
        note = r["error"] or ("ended early" if r["ended_early"] else "")
        lines.append("| " + " | ".join(_cell(r[c]) for c in COLUMNS) + f" | {_cell(note) if note else ''} |")
    p = s["pooled"]
    lines += ["", f"Pooled over {p['inputs_with_truth']} inputs with truth: polyps detected {p['polyps_detected']}/"
              f"{p['polyps']} ({_cell(p['polyp_detection_rate'])}, 95% CI {_cell(p['polyp_detection_rate_ci95'])}); "
              f"frame sensitivity (alert) {_cell(p['frame_sensitivity_alert'])}, specificity "
              f"{_cell(p['frame_specificity_alert'])}; false alarms {p['false_alarms']} in {p['minutes']} min "
              f"({_cell(p['false_alarms_per_min'])}/min)"]
    return "\n".join(lines)


def page(s: dict) -> str:
    esc = html.escape
    head = "".join(f"<th onclick='sortBy({i})'>{esc(c)}</th>" for i, c in enumerate(COLUMNS)) + "<th>error</th>"
    body = []
    for r in s["inputs"]:
        cells = []
        for c in COLUMNS:
            v = r[c]
            text = esc(_cell(v))
            if c == "input" and r["report"]:
                text = f"<a href='{esc(r['report'])}'>{text}</a>"
            if c == "detection_rate" and r["detection_rate_ci95"]:
                text += f" <small>({r['detection_rate_ci95'][0]}–{r['detection_rate_ci95'][1]})</small>"
            sort = "" if v is None else esc(str(v))
            cells.append(f"<td data-v='{sort}'>{text}</td>")
        note = r["error"] or ("ended early" if r["ended_early"] else "")
        cls = " class='failed'" if r["status"] == "failed" else ""
        body.append(f"<tr{cls}>{''.join(cells)}<td>{esc(note)}</td></tr>")
    p = s["pooled"]
    pooled_rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(_cell(v))}</td></tr>" for k, v in p.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>polypwatch study</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:3px 8px;text-align:right}}th{{cursor:pointer;background:#eee}}tr.failed{{background:#fdd}}td:first-child{{text-align:left}}</style>
</head><body><h1>Study</h1>
<p>{esc(markdown(s).splitlines()[0])}. Click a column to sort.</p>
<table id="t"><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
<h2>Pooled</h2><table>{pooled_rows}</table>
<script>
function sortBy(i){{const b=document.querySelector('#t tbody');const rows=[...b.rows];
const asc=b.dataset.col==i&&b.dataset.dir!='asc';b.dataset.col=i;b.dataset.dir=asc?'asc':'desc';
rows.sort((x,y)=>{{const a=x.cells[i].dataset.v,c=y.cells[i].dataset.v;const na=parseFloat(a),nc=parseFloat(c);
const r=(isNaN(na)||isNaN(nc))?a.localeCompare(c):na-nc;return asc?r:-r}});rows.forEach(r=>b.appendChild(r));}}
</script></body></html>"""
