"""Two evaluations of one model in two numerics (fp32 and its INT8 twin), compared under the protocol.

The conditions (issue "CPU INT8", fixed before any twin was scored): on every source's validation frames AUROC within
0.005 of fp32; specificity at the twin's threshold at least 0.95 on every negative set (unseen normals, tower-style,
generated); the corner, message-box and centre A's-warning checks within 2 points of fp32's (a point is one frame in
a hundred); box IoU median within 0.02 where a source has masks.
"""
from __future__ import annotations

AUROC_TOL = 0.005
SPEC_MIN = 0.95
CHECK_TOL_POINTS = 2.0
IOU_TOL = 0.02
CHECKS = (("corner", "shortcut"), ("message box", "message_box"), ("centre A's warning", "centre_a_warning"))
NEGATIVE_SETS = (("unseen normals", "unseen_normals"), ("tower-style", "tower_test"),
                 ("generated", "synthetic_negatives"))


def _row(what: str, a, b, ok: bool | None, limit: str) -> dict:
    return {"what": what, "fp32": a, "int8": b, "difference": None if a is None or b is None else round(b - a, 4),
            "limit": limit, "ok": ok}


def compare(fp32: dict, int8: dict) -> dict:
    """{rows: [...], ok: bool}: every condition of the module docstring, per source and negative set, from two
    ``tools/evaluate --data-root`` metrics.json documents of the same split."""
    if fp32.get("split") != int8.get("split"):
        raise ValueError(f"parity: the two evaluations score different splits ({fp32.get('split')} and "
                         f"{int8.get('split')})")
    rows = []
    for name, a in fp32["sources"].items():
        b = int8["sources"].get(name)
        if b is None:
            raise ValueError(f"parity: source {name!r} is not in the INT8 evaluation")
        if a["auroc"] is not None:
            rows.append(_row(f"{name}: AUROC", a["auroc"], b["auroc"], abs(b["auroc"] - a["auroc"]) <= AUROC_TOL,
                             f"within {AUROC_TOL}"))
        for label, key in CHECKS:
            ca, cb = a.get(key, {}).get("sensitivity_change_points"), b.get(key, {}).get("sensitivity_change_points")
            if ca is not None and cb is not None:
                rows.append(_row(f"{name}: {label} check, sens change (points)", ca, cb,
                                 abs(cb - ca) <= CHECK_TOL_POINTS, f"within {CHECK_TOL_POINTS:g} points"))
        ia, ib = a["iou"].get("median"), b["iou"].get("median")
        if ia is not None and ib is not None:
            rows.append(_row(f"{name}: box IoU median", ia, ib, abs(ib - ia) <= IOU_TOL, f"within {IOU_TOL}"))
        rows.append(_row(f"{name}: sens @ threshold (reported)", a["sensitivity"], b["sensitivity"], None, "–"))
    for label, key in NEGATIVE_SETS:
        if key in fp32 and key in int8 and int8[key].get("count"):
            sb = int8[key]["specificity"]
            rows.append(_row(f"{label}: specificity @ threshold", fp32[key]["specificity"], sb, sb >= SPEC_MIN,
                             f">= {SPEC_MIN}"))
    return {"rows": rows, "ok": all(r["ok"] for r in rows if r["ok"] is not None),
            "threshold": {"fp32": fp32.get("threshold"), "int8": int8.get("threshold")}}


def markdown(result: dict) -> str:
    def f(v):
        return "–" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)
    lines = ["| | fp32 | INT8 | difference | condition | met |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        met = "–" if r["ok"] is None else ("yes" if r["ok"] else "**no**")
        lines.append(f"| {r['what']} | {f(r['fp32'])} | {f(r['int8'])} | {f(r['difference'])} | {r['limit']} | {met} |")
    lines.append(f"\nThresholds: fp32 {result['threshold']['fp32']}, INT8 {result['threshold']['int8']}. "
                 f"All conditions {'met' if result['ok'] else 'NOT met'}.")
    return "\n".join(lines)
