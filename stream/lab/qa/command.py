"""``polypwatch replay``: recorded procedures through the live pipeline, measured (one input, or a study of many)."""
from __future__ import annotations

from pathlib import Path

from engines.errors import ConfigError
from stream.tower_commands import common_options, install_signals, load_command_config, non_negative


def add_arguments(p) -> None:
    common_options(p)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video file, folder of numbered frames (optional masks/ beside images/), or folder of videos")
    p.add_argument("--out", required=True, help="output folder: new, empty, or one polypwatch wrote (it carries a "
                                                "marker file); any other folder or a file is refused")
    p.add_argument("--truth", help="ground-truth JSON (default: INPUT with .json, or masks beside the frames)")
    p.add_argument("--realtime", action="store_true",
                   help="pace at the source fps and drop what cannot be kept up with (what the doctor saw)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated video")
    p.add_argument("--workers", type=non_negative, default=0, metavar="N",
                   help="study: inputs replayed in N worker processes (default: the cores divided by engine.threads)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="study: one Ray task per input; no ADDRESS starts or joins a local Ray instance, an ADDRESS "
                        "joins that cluster (needs the [cluster] extra and a path every node sees)")


def run(args) -> int:
    from stream.lab.qa.inputs import expand_inputs
    from stream.lab.qa.output_dir import check_output_dir
    from stream.lab.qa.replay import STOP, format_metrics, replay
    cfg = load_command_config(args)
    check_output_dir(Path(args.out), inputs=[Path(i) for i in args.inputs if "://" not in i])  # before any work
    from stream.lab.qa.site_truth import procedure_folders, write_site_truth
    records = procedure_folders([Path(i) for i in args.inputs])
    if records:                              # procedure records: the live run judged by the site's own truth
        result = write_site_truth(records, Path(args.out), cfg.record.mark_seconds)
        from stream.lab.qa.site_truth import markdown
        print(markdown(result["procedures"], result["pooled"]) + f"\noutputs in {args.out}")
        return 0
    inputs, study = expand_inputs(args.inputs)
    install_signals(STOP.set)                    # Ctrl-C: the replay in flight stops and is discarded cleanly
    if not study:
        if args.ray is not None or args.workers:
            raise ConfigError("--workers and --ray are for studies (several inputs, a folder, a list file, a glob)")
        print(format_metrics(replay(inputs[0], Path(args.out), cfg, args.truth, args.realtime, not args.no_video)))
        print(f"outputs in {args.out}")
        return 0
    from stream.lab.qa.study_run import run_study
    runner = _runner(args, cfg)
    results = run_study(inputs, Path(args.out), cfg, args.truth, args.realtime, not args.no_video, runner)
    for r in results:
        print(format_metrics(r.metrics) if r.metrics else f"{r.path}: FAILED: {r.error}")
    failed = sum(r.status == "failed" for r in results)
    print(f"outputs in {args.out}" + (f"; {failed} of {len(results)} inputs failed (see summary.json)" if failed else ""))
    return 1 if failed else 0


def _runner(args, cfg):
    from stream.lab.qa.runners import ProcessRunner, RayRunner, SerialRunner
    from stream.lab.qa.study import default_workers
    if args.ray is not None and args.workers:
        raise ConfigError("--ray and --workers: choose one (Ray decides how many run at once)")
    if args.ray is not None:
        return RayRunner(args.ray)
    workers = args.workers or default_workers(cfg)
    return ProcessRunner(workers) if workers > 1 else SerialRunner()
