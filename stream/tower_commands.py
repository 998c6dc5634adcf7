"""The commands at the tower (run, overlay, web, keys): their options and handlers, and the options every
command with a configuration shares.
Registered in stream/commands.py with the lab's; handlers return an exit status and let library exceptions through
(``stream.cli.main`` maps them to exit codes)."""
from __future__ import annotations

import argparse
import json
import logging
import signal
from pathlib import Path

from engines.errors import ConfigError


def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML configuration (default: built-in defaults, see configs/default.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one configuration value (repeatable), e.g. --set alerts.window=8")


def install_signals(stop) -> None:
    def handler(signum, _frame):
        logging.getLogger("polypwatch").info("signal %d: stopping", signum)
        stop()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def load_command_config(args):
    import stream.overlay.config  # noqa: F401  (the overlay section is known to every command's config)
    import stream.web.config  # noqa: F401  (and the web section)
    from stream.config import load_config
    return load_config(args.config, args.set)


def non_negative(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (automatic) or more, got {n}")
    return n


def _check_summary_json(args) -> None:
    """--summary-json is checked before the run, so that a bad path never costs a finished run its summary."""
    from stream.config import check_output_path
    check_output_path("--summary-json", args.summary_json or "")


def _write_summary_json(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as e:
        raise ConfigError(f"--summary-json {path}: cannot write ({e.strerror}); the summary is printed above") from None


def run_arguments(run) -> None:
    common_options(run)
    run.add_argument("--source", help="override capture.source: device index, /dev/videoN, file, folder, "
                                      "rtsp://..., synthetic://seed=3")
    run.add_argument("--summary-json", help="also write the end-of-run summary to this JSON file")


def _run_files(args, cfg) -> None:
    """What a run writes against what it reads (stream/outputs.py), before any work."""
    from engines.runtime.model_files import resolve_model_path
    from engines.runtime.precision import int8_twin
    from stream.outputs import check_outputs
    model = resolve_model_path(cfg.engine.model)
    check_outputs({"--summary-json": (args.summary_json or "", "json"),
                   "pipeline.detections_log": (cfg.pipeline.detections_log, "jsonl")},
                  {"source": str(args.source or cfg.capture.source), "--config": args.config or "",
                   "model": str(model), "model weights": str(model.with_suffix(".pt")),
                   "INT8 twin": str(int8_twin(model)), "engine": cfg.engine.engine_file})


def cmd_run(args) -> int:
    from stream.pipeline import Pipeline, format_summary, summary_json
    cfg = load_command_config(args)
    _check_summary_json(args)
    _run_files(args, cfg)
    if cfg.engine.batch_size > 1:
        if cfg.capture.pace:
            raise ConfigError("engine.batch_size: expected 1 for a live (paced) run, which always takes the newest "
                              "single frame; batches are for every-frame replay (capture.pace: false), got "
                              f"{cfg.engine.batch_size}")
        from stream.batched import BatchedPipeline
        pipe = BatchedPipeline(cfg, source=args.source)
    else:
        pipe = Pipeline(cfg, source=args.source)
    install_signals(pipe.stop_event.set)
    log = logging.getLogger("polypwatch")
    log.info("publishing on %s with model %s (%s, %s: %s)", cfg.publisher.endpoint, pipe.detector.model_id,
             pipe.detector.backend_name, pipe.detector.precision.precision, pipe.detector.precision.reason)
    summary = pipe.run()
    print(format_summary(summary))
    if args.summary_json:
        _write_summary_json(args.summary_json, summary_json(summary))
    return 0


def overlay_arguments(p) -> None:
    common_options(p)
    p.add_argument("--summary-json", help="also write the end-of-run summary to this JSON file")


def cmd_overlay(args) -> int:
    from stream.overlay.app import Overlay, format_summary
    cfg = load_command_config(args)
    _check_summary_json(args)
    from stream.outputs import check_outputs
    oc = cfg.extra["overlay"]
    check_outputs({"--summary-json": (args.summary_json or "", "json"), "overlay.output": (oc.output, "")},
                  {"overlay.video": oc.video if oc.video != "frames" else "", "--config": args.config or ""})
    ov = Overlay(oc)
    ov.record_dir = cfg.record.dir          # key m in the window: "polyp here", kept in the procedure's record
    install_signals(ov.stop_event.set)
    summary = ov.run()
    print(format_summary(summary))
    if args.summary_json:
        _write_summary_json(args.summary_json, json.dumps(summary, indent=1))
    return 0


def web_arguments(p) -> None:
    common_options(p)
    p.add_argument("--listen", metavar="HOST:PORT", help="HTTP address (default web.listen, 127.0.0.1:8080); "
                                                         "off loopback an access token is required")
    p.add_argument("--connect", metavar="ENDPOINT", help="the pipeline's publisher (default web.endpoint, "
                                                         "tcp://127.0.0.1:5560)")
    p.add_argument("--reports", metavar="DIR", help="folder of `polypwatch replay` outputs to browse")
    p.add_argument("--token-file", metavar="FILE", help="file holding the access token")


def cmd_web(args) -> int:
    import asyncio
    from stream.web.server import serve
    for flag, key in (("listen", "listen"), ("connect", "endpoint"), ("reports", "reports_dir"),
                      ("token_file", "token_file")):
        value = getattr(args, flag)
        if value is not None:
            args.set.append(f"web.{key}={json.dumps(value)}")
    cfg = load_command_config(args)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(cfg, stop)

    asyncio.run(main())
    return 0


def keys_arguments(p) -> None:
    p.add_argument("--out", required=True, help="folder to write the two files into")
    p.add_argument("--name", required=True, help="key name, e.g. pipeline or overlay-room3")


def cmd_keys(args) -> int:
    from stream.security import generate_keypair
    public, secret = generate_keypair(args.out, args.name)
    print(f"public key {public} (give to the other side), secret key {secret} (keep here, mode 600)")
    return 0
