"""The site's-truth simulation's tables and its decision rule (docs/EXPERIMENTS.md, "Session 21"): a round's cells
for the log, whether reviewed polyps lifted sensitivity at specificity >= 0.95 in a round, and the verdict over the
rounds run."""
from __future__ import annotations


def _cell(fig: dict | None) -> str:
    if not fig:
        return "–"
    if "refused" in fig:
        return "REFUSED: " + fig["refused"][:90]
    t = fig.get("test", fig)
    lo, hi = t["episodes_per_minute_ci95"]
    z = f", zoomed {t['zoomed_sensitivity']:.3f}" if t.get("zoomed_sensitivity") is not None else ""
    return (f"t {t['threshold']:.3f}: sens {t['sensitivity']:.3f} / spec {t['specificity']:.3f}; cases "
            f"{t['cases_found']}/{t['cases']}; {t['episodes']} ep in {t['minutes']:.2f} min ({lo:.2f}–{hi:.2f}/min); "
            f"AUROC {t['auroc']:.3f}; sens@spec95 {t['sensitivity_at_test_specificity_95']:.3f}{z}")


def table(rows: list[dict]) -> str:
    """The log's table: one row per site and round."""
    lines = ["| site, round (commissioned on → tested on) | fold model at its threshold | footage only | "
             "footage + reviewed polyps |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['site']} {r['round']} ({', '.join(r['commissioned_on'])} → {len(r['tested_on'])} "
                     f"procedures) | {_cell(r['stock'])} | {_cell(r.get('footage_only'))} | "
                     f"{_cell(r.get('with_site_polyps'))} |")
    return "\n".join(lines)


def lifted(row: dict) -> str:
    """The decision rule of the protocol for one round: 'lift', 'no lift', 'framing' (a lift that leans on the framing
    shortcut) or 'refused' (the condition with the site's polyps was not commissioned)."""
    w, f = row.get("with_site_polyps") or {}, row.get("footage_only") or {}
    if "test" not in w:
        return "refused"
    wt = w["test"]
    ft = f.get("test")
    if wt["specificity"] < 0.95:
        return "no lift"
    if ft is not None and ft["specificity"] >= 0.95 and wt["sensitivity"] <= ft["sensitivity"]:
        return "no lift"
    drop = lambda t: t.get("zoomed_sensitivity") is not None and t["zoomed_sensitivity"] < t["sensitivity"] - 0.10  # noqa: E731
    if drop(wt) and not (ft is not None and drop(ft)):
        return "framing"
    return "lift"


def verdict(rows: list[dict]) -> str:
    """Over all rounds run: yes if lifted in more than half, no if in at most a quarter, mixed otherwise."""
    calls = [lifted(r) for r in rows]
    n = sum(c == "lift" for c in calls)
    word = "yes" if n > len(calls) / 2 else "no" if n <= len(calls) / 4 else "mixed"
    return f"{word}: lifted in {n} of {len(calls)} rounds ({', '.join(calls)})"
