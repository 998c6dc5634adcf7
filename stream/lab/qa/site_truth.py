"""``polypwatch replay`` over procedure records (record.dir): what the detector did in each procedure, judged by the
site's own truth, its reviewers' answers and the endoscopists' marks (stream/truth_files.py). No model runs: these
are the live run's alert episodes as the record kept them.

Per procedure: alert episodes reviewed as polyps, false-alarm episodes (reviewed "not a polyp") per minute with a
95% interval (a rate over a few minutes is an interval, not a point), marked polyps the detector had flagged, found
late (time from the mark to the first alert) or missed, and what is not reviewed yet. Pooled over procedures the
same, with the footage and the reviewed cases the figures rest on.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from engines.lab.site.rates import poisson_interval
from stream.record_files import is_procedure
from stream.truth_files import cases, latest_answers, read_review

MIN_MINUTES = 30.0              # below this, a false-alarm rate is reported as its interval only
MIN_REVIEWED = 20               # below this many reviewed cases, the figures are said to rest on too few


def _first_line(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return json.loads(f.readline())
    except (OSError, ValueError):
        return {}


def procedure_figures(folder: Path, mark_seconds: float = 3.0) -> dict:
    summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").is_file() else {}
    seconds = summary.get("seconds") if isinstance(summary.get("seconds"), (int, float)) else 0.0
    minutes = round(float(seconds) / 60, 4)
    t0 = int(_first_line(folder / "detections.jsonl").get("t_capture_ns", 0) or 0)
    answers, edited = read_review(folder)
    latest = latest_answers(answers)
    all_cases = cases(folder)
    eps = [c for c in all_cases if c["kind"] == "episode"]
    starts = sorted(c["start_s"] for c in eps if c.get("start_s") is not None)
    by = {a: [c["id"] for c in eps if latest.get(c["id"], {}).get("answer") == a] for a in ("polyp", "not_polyp",
                                                                                              "unsure")}
    marks = []
    for c in (c for c in all_cases if c["kind"] == "mark"):
        if latest.get(c["id"], {}).get("answer") == "not_polyp":
            continue
        t = (c["t_capture_ns"] - t0) / 1e9 if t0 else None
        first = next((s for s in starts if t is not None and t - mark_seconds <= s <= t + mark_seconds), None)
        state = "missed" if first is None else "flagged" if first <= t else "late"
        marks.append({"mark": c["id"], "t_s": None if t is None else round(t, 2), "state": state,
                      "time_to_first_alert_s": None if state != "late" else round(first - t, 2),
                      "reviewed": latest.get(c["id"], {}).get("answer", "")})
    false_alarms = len(by["not_polyp"])
    reviewed = sum(1 for c in all_cases if c["id"] in latest)
    return {"procedure": folder.name, "finished": bool(summary), "minutes": minutes,
            "episodes": len(eps), "episodes_polyp": len(by["polyp"]), "episodes_not_polyp": false_alarms,
            "episodes_unsure": len(by["unsure"]), "episodes_unreviewed": len(eps) - sum(len(v) for v in by.values()),
            "false_alarms_per_minute_ci95": list(poisson_interval(false_alarms, minutes)),
            "false_alarms_per_minute": round(false_alarms / minutes, 4) if minutes >= MIN_MINUTES else None,
            "marks": marks, "marked_missed": sum(m["state"] == "missed" for m in marks),
            "marked_late": sum(m["state"] == "late" for m in marks),
            "reviewed_cases": reviewed, "cases": len(all_cases), "review_edited_at_line": edited}


def pooled(figs: list[dict]) -> dict:
    minutes = sum(f["minutes"] for f in figs)
    fa = sum(f["episodes_not_polyp"] for f in figs)
    reviewed = sum(f["reviewed_cases"] for f in figs)
    polyps = sum(f["episodes_polyp"] for f in figs) + sum(len(f["marks"]) for f in figs)
    found = sum(f["episodes_polyp"] for f in figs) + sum(f["marked_late"] + sum(m["state"] == "flagged" for m in
                                                                            f["marks"]) for f in figs)
    rests = (f"rests on {minutes:.1f} min of procedures and {reviewed} reviewed cases"
             + ("" if minutes >= MIN_MINUTES and reviewed >= MIN_REVIEWED else
                f": too little for a rate (at least {MIN_MINUTES:g} min and {MIN_REVIEWED} reviewed cases; "
                f"{max(0.0, MIN_MINUTES - minutes):.1f} min and {max(0, MIN_REVIEWED - reviewed)} cases more)"))
    return {"procedures": len(figs), "minutes": round(minutes, 2), "reviewed_cases": reviewed,
            "false_alarm_episodes": fa, "false_alarms_per_minute_ci95": list(poisson_interval(fa, minutes)),
            "false_alarms_per_minute": round(fa / minutes, 4) if minutes >= MIN_MINUTES else None,
            "site_polyps": polyps, "site_polyps_found": found,
            "marked_missed": sum(f["marked_missed"] for f in figs), "marked_late": sum(f["marked_late"] for f in figs),
            "rests_on": rests}


def procedure_folders(inputs: list[Path]) -> list[Path] | None:
    """The procedure records the inputs name (each one, or a record.dir of them); None if an input is anything else."""
    out = []
    for p in inputs:
        if is_procedure(p):
            out.append(p)
        elif p.is_dir() and not p.is_symlink() and any(is_procedure(q) for q in p.iterdir()):
            out += sorted(q for q in p.iterdir() if is_procedure(q))
        else:
            return None
    return out


def markdown(figs: list[dict], pool: dict) -> str:
    cols = ("procedure", "minutes", "episodes", "episodes_polyp", "episodes_not_polyp", "episodes_unreviewed",
            "false_alarms_per_minute_ci95", "marked_late", "marked_missed")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(f[c]).replace("|", "\\|") for c in cols) + " |" for f in figs]
    lo, hi = pool["false_alarms_per_minute_ci95"]
    return "\n".join(lines + ["", f"Pooled: {pool['false_alarm_episodes']} false-alarm episodes, {lo}–{hi} per minute "
                              f"(95% interval); site polyps found {pool['site_polyps_found']} of {pool['site_polyps']} "
                              f"(marked late {pool['marked_late']}, missed {pool['marked_missed']}); {pool['rests_on']}."])


def write_site_truth(folders: list[Path], out: Path, mark_seconds: float = 3.0) -> dict:
    from stream.lab.qa.output_dir import make_output_dir, record_written
    make_output_dir(out, kind="replay (site truth)")
    figs = [procedure_figures(f, mark_seconds) for f in folders]
    result = {"procedures": figs, "pooled": pooled(figs)}
    md = markdown(figs, result["pooled"])
    (out / "site_truth.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "site_truth.md").write_text(md + "\n")
    (out / "report.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>site truth</title></head>"
                                     f"<body><h1>The site's truth: reviewed procedures</h1><pre>{html.escape(md)}</pre>"
                                     f"</body></html>\n")
    record_written(out, ("site_truth.json", "site_truth.md", "report.html"), kind="replay (site truth)")
    return result
