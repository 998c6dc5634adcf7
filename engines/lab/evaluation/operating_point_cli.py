"""tools/operating_point: threshold and alert filter chosen together on validation sequences (engines/lab/evaluation/operating_point.py),
and what the model's own threshold with the live filter does on them."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from engines.errors import CheckFailed


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--model", default="", help="ONNX model (default: the shipped model)")
    ap.add_argument("--data-root", required=True, metavar="DIR", help="folder laid out like ../shared/data")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each generated clip (default 30)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="", help="write operating_point.json and operating_point.md here")
    ap.add_argument("--apply", action="store_true",
                    help="write the rule's threshold into the model's metadata (refused when the rule is not met or "
                         "its filter is not the live default, 3 of 5): the figures go into its scores.operating_point")


def _line(m: dict) -> str:
    free = "; ".join(f"{k} {100 * d['alert_on_share']:.1f}% on, {d['episodes_per_minute']:.2f} episodes/min "
                     f"({d['frames']} frames)" for k, d in sorted(m["polyp_free"].items()))
    ttfa = m["median_first_alert_ms"]
    return (f"threshold {m['threshold']:.2f}, filter {m['filter']}: polyps detected {m['polyps_detected']}/{m['polyps']}"
            f" (median first alert {'–' if ttfa is None else f'{ttfa:.0f} ms'}); polyp-free: pooled "
            f"{100 * m['alert_on_share_pooled']:.1f}% on; {free}")


def run(args) -> int:
    from engines.runtime.metadata import read_onnx_metadata
    from engines.runtime.model_files import resolve_model_path
    from engines.lab.evaluation.operating_point import apply_to_model, choose, live_filter, measure
    from engines.lab.evaluation.sequences import generated_sequences, recorded_sequences
    model = resolve_model_path(args.model)
    meta = read_onnx_metadata(model)
    seqs = recorded_sequences(model, args.data_root, args.threads) + generated_sequences(
        model, args.seconds, threads=args.threads)
    chosen = choose(seqs)
    own = measure(seqs, meta.threshold, *live_filter())
    try:
        applied = apply_to_model(model, chosen, [s.name for s in seqs]) if args.apply else None
    except ValueError as e:                  # the rule was not met, or chose another filter than the live one
        raise CheckFailed(str(e)) from None
    text = (f"model {meta.model_id} ({meta.precision}); {len(seqs)} sequences\n"
            f"- the model's threshold with the live filter: {_line(own)}\n"
            f"- the rule's choice ({'met' if chosen['met'] else 'NOT met: no threshold quiet enough'}): {_line(chosen)}")
    if applied is not None:
        text += (f"\n- applied: {model} threshold {applied.threshold:.2f} (was {meta.threshold:.3f}), boxes outlined at "
                 f"{applied.box_threshold:.2f}")
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "operating_point.json").write_text(json.dumps({"model": meta.model_id, "own": own, "chosen": chosen,
                                                              "sequences": [s.name for s in seqs]}, indent=1))
        (out / "operating_point.md").write_text(text + "\n")
    return 0
