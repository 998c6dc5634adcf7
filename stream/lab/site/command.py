"""``polypwatch site-check``: how the detector will behave at a hospital, from its own polyp-free footage, before
anyone relies on it there. Writes site_check.json and report.html; exit 0 whatever the verdict (it is a measurement),
5 with --require-fit when the verdict is not ``fits``."""
from __future__ import annotations

import json
from pathlib import Path

from engines.errors import CheckFailed, ConfigError
from stream.tower_commands import common_options, install_signals, load_command_config


def add_arguments(p) -> None:
    common_options(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--polyp-free", nargs="+", metavar="VIDEO_OR_DIR",
                     help="the site's polyp-free recordings: videos, or folders of frames (a sequence in name order)")
    src.add_argument("--records", metavar="DIR",
                     help="procedure records (record.dir, with record.footage): their footage outside every case "
                          "reviewed as a polyp, unsure or not reviewed, and outside marks (docs/COMMISSIONING.md)")
    p.add_argument("--model", default="", help="the model to check (default: engine.model, the shipped one)")
    p.add_argument("--out", required=True, help="output folder: new, empty, or one polypwatch wrote")
    p.add_argument("--require-fit", action="store_true", help="exit 5 unless the verdict is 'fits'")


def run(args) -> int:
    import dataclasses
    import threading

    from engines.lab.site.kit import kit_path, load_kit
    from engines.errors import ModelError
    from stream.lab.qa.inputs import resolve_input
    from stream.lab.qa.output_dir import check_output_dir, make_output_dir
    from stream.lab.site.check import MAX_GALLERY, MIN_FRAMES, run_recording, summarise
    from stream.lab.site.report import report_html
    cfg = load_command_config(args)
    if args.model:
        cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, model=args.model))
    out = Path(args.out)
    check_output_dir(out, inputs=[Path(p) for p in (args.polyp_free or [args.records])])
    make_output_dir(out, kind="site-check")          # made now: an output that cannot be written fails before the work
    import tempfile
    work = tempfile.TemporaryDirectory(prefix="polypwatch-records-")
    used = None
    if args.records:
        from stream.lab.site.records import records_footage
        used = records_footage(Path(args.records), Path(work.name), cfg.record.mark_seconds)
        inputs = [resolve_input(f, None, rate) for f, rate in zip(used.folders, used.fps)]
    else:
        if len({Path(p).resolve() for p in args.polyp_free}) != len(args.polyp_free):
            raise ConfigError("--polyp-free: the same recording was given twice")
        inputs = [resolve_input(Path(p), None, cfg.capture.fps) for p in args.polyp_free]
    stop = threading.Event()
    install_signals(stop.set)
    results, ident = [], {}
    for inp in inputs:
        r, ident = run_recording(inp, cfg, stop)
        results.append(r)
    frames = sum(len(r.scores) for r in results)
    if frames < MIN_FRAMES:
        raise ConfigError(f"--polyp-free: {frames} frames, expected at least {MIN_FRAMES}: too little footage to say "
                          f"how the detector behaves at this site")
    work.cleanup()
    s = summarise(results, ident)
    if used is not None:
        s["records"] = used.summary | {"note": "footage frames are kept densely inside episodes and marks and at "
                                               "record.footage_fps elsewhere: the alert filter ran over the kept "
                                               "frames at their own rate"}
    try:
        from engines.runtime.model_files import resolve_model_path
        fp32 = resolve_model_path(cfg.engine.model)
        kit = load_kit(kit_path(fp32), s["model_id"])
        reference, note = kit.reference, f"validation scores of the model's training sources ({kit_path(fp32).name})"
    except ModelError as e:
        reference, note = {}, f"no reference distribution for this model: {e}"
    (out / "site_check.json").write_text(json.dumps(s, indent=1) + "\n")
    (out / "report.html").write_text(report_html(s, results, reference, note, MAX_GALLERY))
    from stream.lab.qa.output_dir import record_written
    record_written(out, ("site_check.json", "report.html"), kind="site-check")
    print(f"{s['verdict']}: {s['reason']}\n{s['frames']} frames, {s['episodes']} alert episodes "
          f"({s['episodes_per_minute']}/min), alert on in {s['alert_on_share']:.1%}; outputs in {out}")
    if args.require_fit and s["verdict"] != "fits":
        raise CheckFailed(f"site check: {s['verdict']} (--require-fit)")
    return 0
