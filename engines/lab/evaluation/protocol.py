"""Evaluation over every source under the protocol of ``engines.lab.data.sources``.

- ``external``: each source scored as if it had been left out (all of its frames, its polyp-free views, and
  for sources without negatives of their own the unseen normals): for a model that never saw the source this is
  the leave-one-source-out figure; for the shipped model it is the v1 baseline of the model card.
- ``val``: the protocol's validation frames of each source (frames as recorded, mined views, tower screens).
- always: the unseen normals (frames no run trains on), the tower-style negative test set made from them, and
  polyp-free generated frames.
"""
from __future__ import annotations

import numpy as np

from engines.lab.data.sources import holdout_test, tower_test, unseen_normals
from engines.lab.evaluation.evaluate import FrameScore, score_frames, score_samples, summarise, synthetic_frames

SPLITS = ("external", "val")


def negative_summary(scores: list[FrameScore], threshold: float) -> dict:
    """Specificity and score spread of a negatives-only set."""
    s = np.array([f.score for f in scores])
    return {"count": len(s), "threshold": round(threshold, 4),
            "specificity": round(float((s < threshold).mean()), 4) if len(s) else None,
            "score_p50": round(float(np.median(s)), 4) if len(s) else None,
            "score_p95": round(float(np.percentile(s, 95)), 4) if len(s) else None,
            "score_max": round(float(s.max()), 4) if len(s) else None}


def validation_frames(sources: dict) -> list:
    """The validation frames of the all-source run (as recorded, mined views, tower screens)."""
    from engines.lab.data.sources import build_protocol
    return list(build_protocol(sources).val)


def evaluate_protocol(model, sources: dict, threshold: float, split: str = "external", names=None,
                      synthetic_negatives: int = 200, threads: int = 2, progress=None) -> tuple[dict, list[FrameScore]]:
    """(metrics, every frame's score)."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    names = list(names or sources)
    out: dict = {"split": split, "threshold": round(threshold, 4), "sources": {}}
    every: list[FrameScore] = []
    val = validation_frames(sources) if split == "val" else []
    for name in names:
        samples = holdout_test(sources, name) if split == "external" else [s for s in val if s.dataset == name]
        scored = score_samples(model, list(samples), threads, shortcut=True, progress=progress)
        out["sources"][name] = summarise(scored, threshold)
        every += scored
    unseen = score_samples(model, unseen_normals(sources), threads, shortcut=False, progress=progress)
    tower = score_samples(model, tower_test(sources), threads, shortcut=False, progress=progress)
    synth = score_frames(model, synthetic_frames(synthetic_negatives), synthetic_negatives, threads, shortcut=False)
    out["unseen_normals"] = negative_summary(unseen, threshold)
    out["tower_test"] = negative_summary(tower, threshold)
    out["synthetic_negatives"] = negative_summary(synth, threshold)
    return out, every + unseen + tower + synth


def fmt(v, d: int = 3) -> str:
    """A table cell: the value to ``d`` decimals, or – where there is none."""
    return "–" if v is None else f"{v:.{d}f}"


def table(m: dict) -> str:
    """The per-source table as markdown."""
    f = fmt
    rows = [("| source | frames (pos) | AUROC | sens @95% spec | sens / spec @ threshold | sequences | box IoU median "
             "| corner painted: sens change | message box: sens change | centre A's warning: sens change |"),
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in m["sources"].items():
        seq = f"{s['sequences_detected']}/{s['sequences_total']}" if s["sequences_total"] else "–"
        sc = s.get("shortcut", {}).get("sensitivity_change_points")
        mb = s.get("message_box", {}).get("sensitivity_change_points")
        wa = s.get("centre_a_warning", {}).get("sensitivity_change_points")
        rows.append(f"| {name} | {s['count']} ({s['positives']}) | {f(s['auroc'])} | "
                    f"{f(s['sensitivity_at_95_specificity'])} | {f(s['sensitivity'])} / {f(s['specificity'])} | {seq} | "
                    f"{f(s['iou']['median'])} | {f(sc, 2)} | {f(mb, 2)} | {f(wa, 2)} |")
    seqs = [(k, e) for src in m["sources"].values() for k, e in src["sequences"].items()]
    if seqs:
        rows += ["", ("| sequence | polyp frames | detected @ threshold | AUROC / sens @95% spec against the source's "
                      "negatives |"), "|---|---|---|---|"]
        rows += [f"| {k} | {e['frames']} | {e['detected_frames']} | {f(e.get('auroc'))} / "
                 f"{f(e.get('sensitivity_at_95_specificity'))} |" for k, e in seqs]
    rows.append("")
    rows.append("| negative set | frames | specificity @ threshold | score p50 / p95 / max |")
    rows.append("|---|---|---|---|")
    for key, label in (("unseen_normals", "unseen normals (kvasir-normal test 20%)"),
                       ("tower_test", "tower-style negatives (unseen normals on tower screens)"),
                       ("synthetic_negatives", "polyp-free generated frames (seeds 3000+)")):
        n = m[key]
        rows.append(f"| {label} | {n['count']} | {f(n['specificity'])} | {f(n['score_p50'])} / {f(n['score_p95'])} / "
                    f"{f(n['score_max'])} |")
    return "\n".join(rows)
