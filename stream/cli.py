"""``polypwatch``: the console command. Only this module maps exceptions to exit codes."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from stream.errors import ConfigError, ModelError, PolypwatchError, SourceError, TruthError

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_SOURCE, EXIT_MODEL = 0, 1, 2, 3, 4


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML configuration (default: built-in defaults, see configs/default.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one configuration value (repeatable), e.g. --set alerts.window=8")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser(extra_parsers=()) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="polypwatch", description="Real-time computer-aided polyp detection.")
    sub = ap.add_subparsers(dest="command", required=True)
    for add in extra_parsers:            # sub-commands registered in stream/commands.py
        add(sub)
    run = sub.add_parser("run", help="run the live pipeline: capture -> detect -> alert -> publish")
    _common(run)
    run.add_argument("--source", help="override capture.source: device index, /dev/videoN, file, folder, "
                                      "rtsp://..., synthetic://seed=3")
    run.add_argument("--summary-json", help="also write the end-of-run summary to this JSON file")
    return ap


def _install_signals(stop) -> None:
    def handler(signum, _frame):
        logging.getLogger("polypwatch").info("signal %d: stopping", signum)
        stop()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def cmd_run(args) -> int:
    from stream.config import load_config
    from stream.pipeline import Pipeline, format_summary, summary_json
    cfg = load_config(args.config, args.set)
    pipe = Pipeline(cfg, source=args.source)
    _install_signals(pipe.stop_event.set)
    log = logging.getLogger("polypwatch")
    log.info("publishing on %s with model %s (%s)", cfg.publisher.endpoint, pipe.detector.model_id,
             pipe.detector.backend_name)
    summary = pipe.run()
    print(format_summary(summary))
    if args.summary_json:
        Path(args.summary_json).write_text(summary_json(summary))
    return EXIT_OK


COMMANDS = {"run": cmd_run}

# library exceptions -> (exit code, message prefix); first match wins, PolypwatchError last
EXIT_CODES = ((ConfigError, EXIT_CONFIG, "configuration error: "), (TruthError, EXIT_CONFIG, "ground truth error: "),
              (SourceError, EXIT_SOURCE, "source error: "), (ModelError, EXIT_MODEL, "model error: "),
              (PolypwatchError, EXIT_ERROR, ""))


def register_command(name: str, handler) -> None:
    COMMANDS[name] = handler


def main(argv: list[str] | None = None) -> int:
    from stream import commands  # noqa: F401  (registers overlay / replay when present)
    args = build_parser(commands.EXTRA_PARSERS).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except PolypwatchError as e:
        code, what = next((c, w) for cls, c, w in EXIT_CODES if isinstance(e, cls))
        print(f"polypwatch: {what}{e}", file=sys.stderr)
        return code
