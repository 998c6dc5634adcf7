"""tools/evaluate: score an ONNX model on dataset folders; write metrics.json and print a table."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from engines.errors import CheckFailed, ConfigError


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--model", default="", help="ONNX model (default: the shipped model)")
    ap.add_argument("--data-root", metavar="DIR",
                    help="evaluate per source under the protocol of engines/lab/data/sources.py (a folder laid out like "
                         "../shared/data): a table per source, the unseen normals, the tower-style negative test set "
                         "and polyp-free generated frames")
    ap.add_argument("--protocol-split", choices=("external", "val"), default="external",
                    help="with --data-root: 'external' scores each source as if left out (all its frames, its "
                         "polyp-free views, unseen normals); 'val' the validation frames of each source")
    ap.add_argument("--sources", nargs="+", default=None, metavar="NAME", help="with --data-root: only these sources")
    ap.add_argument("--synthetic-negatives", type=int, default=200, metavar="N",
                    help="with --data-root: polyp-free generated frames to score (seeds 3000+)")
    ap.add_argument("--dataset", action="append", default=[], metavar="DIR", help="dataset folder (repeatable)")
    ap.add_argument("--split", default=None, help="use this split list of the datasets that have one (e.g. val)")
    ap.add_argument("--negatives", action="append", default=[], metavar="DIR",
                    help="folder of frames without polyps (repeatable)")
    ap.add_argument("--negatives-holdout", type=float, default=0.0, metavar="FRACTION",
                    help="use only the fixed-seed held-out share of --negatives (the validation part of training)")
    ap.add_argument("--seed", type=int, default=0, help="seed of that split (as given to tools/train)")
    ap.add_argument("--threshold", type=float, default=0.0, help="operating threshold (default: the model's)")
    ap.add_argument("--no-shortcut-check", action="store_true", help="skip the painted-corner re-scoring")
    ap.add_argument("--parity-with", default="", metavar="METRICS_JSON",
                    help="with --data-root: compare with another numerics' evaluation of the same model (its fp32 "
                         "metrics.json): AUROC, checks, IoU and the negative sets (engines/lab/evaluation/parity.py); "
                         "writes parity.md/.json beside metrics.json, exit 3 if a condition is not met")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="", help="write metrics.json (and scores.csv) into this folder")


def run(args) -> int:
    from engines.lab.data.datasets import load_dataset, split_fraction
    from engines.lab.evaluation.evaluate import score_samples, summarise
    from engines.runtime.metadata import read_onnx_metadata
    from engines.runtime.model_files import resolve_model_path
    if args.data_root:
        return _protocol(args)
    model = resolve_model_path(args.model)
    meta = read_onnx_metadata(model)
    samples = []
    for d in args.dataset:
        samples += load_dataset(d, split=args.split if args.split and any(Path(d).glob(f"split*/{args.split}.txt")) else None)
    for d in args.negatives:
        neg = load_dataset(d, layout="negatives")
        if args.negatives_holdout > 0:
            neg = split_fraction(neg, args.negatives_holdout, args.seed)[1]
        samples += neg
    if not samples:
        raise ConfigError("no samples: give --dataset and/or --negatives")
    threshold = args.threshold or meta.threshold
    scores = score_samples(model, samples, args.threads, shortcut=not args.no_shortcut_check)
    m = summarise(scores, threshold)
    m.update(model=meta.model_id, precision=meta.precision, model_file=str(model))
    print(f"model {meta.model_id} ({meta.precision}), threshold {m['threshold']}")
    print(f"{'dataset':<20}{'frames':>8}{'pos':>6}{'sens':>8}{'spec':>8}{'AUROC':>8}")
    for name, d in m["per_dataset"].items():
        f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{name:<20}{d['count']:>8}{d['positives']:>6}{f(d['sensitivity']):>8}{f(d['specificity']):>8}{f(d['auroc']):>8}")
    print(f"all: AUROC {m['auroc']}, sensitivity {m['sensitivity']}, specificity {m['specificity']}")
    if m["sequences_total"]:
        print(f"sequences detected: {m['sequences_detected']}/{m['sequences_total']}")
    if m["iou"]["count"]:
        print(f"box IoU on detected frames: median {m['iou']['median']}, >= 0.5 in {m['iou']['fraction_ge_0_5']}")
    if "shortcut" in m:
        print(f"lower-left corner painted black: sensitivity {m['shortcut']['sensitivity_painted']} "
              f"(change {m['shortcut']['sensitivity_change_points']} points), specificity {m['shortcut']['specificity_painted']}")
    if "message_box" in m:
        print(f"on-screen message box over the image: sensitivity {m['message_box']['sensitivity_boxed']} "
              f"(change {m['message_box']['sensitivity_change_points']} points), specificity "
              f"{m['message_box']['specificity_boxed']}")
    if "centre_a_warning" in m:
        print(f"centre A's printer warning over the image: sensitivity {m['centre_a_warning']['sensitivity_warned']} "
              f"(change {m['centre_a_warning']['sensitivity_change_points']} points), specificity "
              f"{m['centre_a_warning']['specificity_warned']}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(m, indent=1))
        with (out / "scores.csv").open("w") as fh:
            fh.write("image,dataset,group,label,score,score_corner_painted,score_message_box,score_centre_a_warning,"
                     "iou\n")
            for s in scores:
                fh.write(f"{s.sample.image},{s.sample.dataset},{s.sample.group},{s.label},{s.score:.5f},"
                         f"{s.score_painted:.5f},{s.score_boxed:.5f},{s.score_warned:.5f},"
                         f"{'' if s.iou is None else round(s.iou, 4)}\n")
    return 0


def _protocol(args) -> int:
    from engines.lab.data.sources import SOURCES, load_sources
    from engines.lab.evaluation.protocol import evaluate_protocol, table
    from engines.runtime.metadata import read_onnx_metadata
    from engines.runtime.model_files import resolve_model_path
    if args.dataset or args.negatives:
        raise ConfigError("--data-root takes no --dataset or --negatives")
    unknown = [s for s in args.sources or () if s not in SOURCES]
    if unknown:
        raise ConfigError(f"--sources: unknown {unknown}; expected some of {list(SOURCES)}")
    model = resolve_model_path(args.model)
    meta = read_onnx_metadata(model)
    sources = load_sources(args.data_root)
    threshold = args.threshold or meta.threshold
    m, scores = evaluate_protocol(model, sources, threshold, args.protocol_split, args.sources,
                                  args.synthetic_negatives, args.threads)
    m.update(model=meta.model_id, precision=meta.precision, model_file=str(model))
    text = f"model {meta.model_id} ({meta.precision}), threshold {m['threshold']}, split {m['split']}\n\n" + table(m)
    print(text)
    parity = None
    if args.parity_with:
        from engines.lab.evaluation.parity import compare, markdown
        try:
            parity = compare(json.loads(Path(args.parity_with).read_text()), m)
        except (OSError, ValueError, KeyError) as e:
            raise ConfigError(f"--parity-with {args.parity_with}: {e}") from None
        print("\nParity with " + args.parity_with + ":\n" + markdown(parity))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(m, indent=1))
        (out / "table.md").write_text(text + "\n")
        with (out / "scores.csv").open("w") as fh:
            fh.write("image,source,group,view,label,score,score_corner_painted,score_message_box,"
                     "score_centre_a_warning\n")
            for s in scores:
                fh.write(f"{s.sample.image},{s.sample.dataset},{s.sample.group},{s.sample.view},{s.label},"
                         f"{s.score:.5f},{s.score_painted:.5f},{s.score_boxed:.5f},{s.score_warned:.5f}\n")
        if parity is not None:
            from engines.lab.evaluation.parity import markdown
            (out / "parity.json").write_text(json.dumps(parity, indent=1))
            (out / "parity.md").write_text(markdown(parity) + "\n")
    if parity is not None and not parity["ok"]:
        raise CheckFailed(f"parity with {args.parity_with}: not within the pre-registered conditions (parity.md)")
    return 0
