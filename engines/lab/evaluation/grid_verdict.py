"""tools/grid_verdict: a pre-registered grid's fold conditions, applied to its folds as they stand.

Each arm is a tools/crossval output folder (``ARM/<source>/eval.json`` per finished fold). Against the baseline arm,
a candidate must (docs/EXPERIMENTS.md, "Model v4: pre-registered"):
  1. beat the baseline's mean over the folds in AUROC and in sensitivity at 95% specificity;
  2. lose no more than ``margin`` AUROC to the baseline on any fold;
  3. detect every sequence of the sequence source's fold at that fold's own threshold.
A condition is ``met``, ``failed`` or ``pending`` (a fold it needs has not finished; a fold that fails 2 or 3 fails
the candidate whatever the others do). Conditions 4 and 5 need the all-source model and tools/bench: the verdict
names the candidate to take there (the best by mean fold AUROC of those that meet 1-3), it does not judge them.
The issue's fold targets (AUROC and sensitivity floors on every fold) are reported, not required.
"""
from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from engines.errors import ConfigError, DatasetError

MET, FAILED, PENDING = "met", "failed", "pending"


@dataclass(frozen=True)
class Fold:
    """One finished fold of one arm: the left-out source's scores."""
    source: str
    auroc: float
    sens95: float
    sequences_detected: int
    sequences_total: int


@dataclass(frozen=True)
class Condition:
    number: int
    state: str
    detail: str


@dataclass(frozen=True)
class Verdict:
    arm: str
    folds_done: int
    folds_total: int
    mean_auroc: float | None
    mean_sens95: float | None
    conditions: tuple[Condition, ...]
    fold_targets: str

    @property
    def state(self) -> str:
        states = {c.state for c in self.conditions}
        return FAILED if FAILED in states else PENDING if PENDING in states else MET


def load_arm(folder: str | Path, sources: list[str]) -> dict[str, Fold]:
    """The finished folds of an arm, by source; a source without ``eval.json`` is not there yet."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such arm folder (a tools/crossval --out folder)")
    folds = {}
    for s in sources:
        path = root / s / "eval.json"
        if not path.is_file():
            continue
        try:
            row = json.loads(path.read_text())
            folds[s] = Fold(source=s, auroc=float(row["auroc"]), sens95=float(row["sensitivity_at_95_specificity"]),
                            sequences_detected=int(row.get("sequences_detected", 0)),
                            sequences_total=int(row.get("sequences_total", 0)))
        except (ValueError, KeyError, TypeError) as e:
            raise DatasetError(f"{path}: not a tools/crossval fold result ({type(e).__name__}: {e})") from e
        if row.get("source", s) != s:
            raise DatasetError(f"{path}: holds the fold of {row.get('source')!r}, expected {s!r}")
    return folds


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def judge(arm: str, base: dict[str, Fold], cand: dict[str, Fold], sources: list[str], margin: float = 0.03,
          sequence_source: str = "cvc-colondb", target_auroc: float = 0.95, target_sens95: float = 0.85) -> Verdict:
    complete = all(s in base and s in cand for s in sources)
    mean_a = _mean([cand[s].auroc for s in sources if s in cand])
    mean_s = _mean([cand[s].sens95 for s in sources if s in cand])
    if complete:
        base_a = _mean([base[s].auroc for s in sources])
        base_s = _mean([base[s].sens95 for s in sources])
        ok = mean_a > base_a and mean_s > base_s
        c1 = Condition(1, MET if ok else FAILED,
                       f"mean AUROC {mean_a:.3f} vs {base_a:.3f}, sens@95 {mean_s:.3f} vs {base_s:.3f}")
    else:
        missing = [s for s in sources if s not in base or s not in cand]
        c1 = Condition(1, PENDING, "folds to come: " + ", ".join(missing))
    both = [s for s in sources if s in base and s in cand]
    losses = [f"{s} {cand[s].auroc:.3f} vs {base[s].auroc:.3f}" for s in both if cand[s].auroc < base[s].auroc - margin]
    if losses:
        c2 = Condition(2, FAILED, f"more than {margin:.2f} AUROC below the baseline: " + "; ".join(losses))
    else:
        worst = min((cand[s].auroc - base[s].auroc for s in both), default=None)
        detail = f"worst fold difference {worst:+.3f}" if worst is not None else "no fold of both yet"
        c2 = Condition(2, MET if complete else PENDING, detail + ("" if complete else f" ({len(both)} of {len(sources)} folds)"))
    seq = cand.get(sequence_source)
    if seq is None:
        c3 = Condition(3, PENDING, f"the {sequence_source} fold has not finished")
    elif seq.sequences_total == 0:
        c3 = Condition(3, FAILED, f"the {sequence_source} fold scored no sequences")
    else:
        c3 = Condition(3, MET if seq.sequences_detected == seq.sequences_total else FAILED,
                       f"{seq.sequences_detected}/{seq.sequences_total} sequences detected")
    below = [s for s in sources if s in cand and (cand[s].auroc < target_auroc or cand[s].sens95 < target_sens95)]
    targets = (f"folds under AUROC {target_auroc} or sens@95 {target_sens95}: " + (", ".join(below) or "none")
               + ("" if all(s in cand for s in sources) else " (so far)"))
    return Verdict(arm=arm, folds_done=sum(s in cand for s in sources), folds_total=len(sources), mean_auroc=mean_a,
                   mean_sens95=mean_s, conditions=(c1, c2, c3), fold_targets=targets)


def next_step(verdicts: list[Verdict]) -> str:
    """Which candidate goes on to conditions 4-5, or why none does yet."""
    met = sorted((v for v in verdicts if v.state == MET), key=lambda v: -(v.mean_auroc or 0.0))
    if met:
        return (f"check conditions 4-5 with {met[0].arm} (mean fold AUROC {met[0].mean_auroc:.3f})"
                + (f"; if it fails them: {', '.join(v.arm for v in met[1:])}" if len(met) > 1 else ""))
    if any(v.state == PENDING for v in verdicts):
        return "grid unfinished: " + ", ".join(v.arm for v in verdicts if v.state == PENDING) + " still open"
    return "no candidate meets conditions 1-3: the model stays as it is"


def report(verdicts: list[Verdict]) -> str:
    lines = ["| arm | folds | mean AUROC | mean sens@95 | 1 | 2 | 3 | verdict |", "|---|---|---|---|---|---|---|---|"]
    f = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
    for v in verdicts:
        lines.append(f"| {v.arm} | {v.folds_done}/{v.folds_total} | {f(v.mean_auroc)} | {f(v.mean_sens95)} | "
                     + " | ".join(c.state for c in v.conditions) + f" | {v.state} |")
    for v in verdicts:
        lines.append("")
        lines.append(f"{v.arm}:")
        lines += [f"  {c.number}. {c.state}: {c.detail}" for c in v.conditions]
        lines.append(f"  targets (reported): {v.fold_targets}")
    lines += ["", next_step(verdicts)]
    return "\n".join(lines)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--baseline", required=True, metavar="DIR", help="the baseline arm's tools/crossval --out folder")
    ap.add_argument("--candidate", required=True, nargs="+", metavar="DIR", help="each candidate arm's folder")
    ap.add_argument("--sources", required=True, nargs="+", metavar="NAME", help="the grid's left-out sources")
    ap.add_argument("--sequence-source", default="cvc-colondb", metavar="NAME",
                    help="the fold that must detect every sequence (default cvc-colondb)")
    ap.add_argument("--margin", type=float, default=0.03, help="largest AUROC loss allowed on one fold (default 0.03)")
    ap.add_argument("--json", default="", metavar="FILE", help="also write the verdicts as JSON")


def run(args) -> int:
    if args.sequence_source not in args.sources:
        raise ConfigError(f"--sequence-source {args.sequence_source!r} is not among --sources {args.sources}")
    base = load_arm(args.baseline, args.sources)
    verdicts = [judge(Path(c).name, base, load_arm(c, args.sources), args.sources, args.margin,
                      args.sequence_source) for c in args.candidate]
    print(report(verdicts))
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"arm": v.arm, "state": v.state, "folds_done": v.folds_done, "mean_auroc": v.mean_auroc,
              "mean_sens95": v.mean_sens95, "fold_targets": v.fold_targets,
              "conditions": [{"number": c.number, "state": c.state, "detail": c.detail} for c in v.conditions]}
             for v in verdicts], indent=1))
    return 0
