"""``polypwatch``: the console command. Only this module maps exceptions to exit codes."""
from __future__ import annotations

import argparse
import logging
import sys

from engines.errors import ConfigError, Interrupted, ModelError, PolypwatchError, SourceError, TruthError
from stream.commands import COMMANDS

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_SOURCE, EXIT_MODEL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

# library exceptions -> (exit code, message prefix); first match wins, PolypwatchError last
EXIT_CODES = ((ConfigError, EXIT_CONFIG, "configuration error: "), (TruthError, EXIT_CONFIG, "ground truth error: "),
              (SourceError, EXIT_SOURCE, "source error: "), (ModelError, EXIT_MODEL, "model error: "),
              (Interrupted, EXIT_INTERRUPTED, "interrupted: "),
              (PolypwatchError, EXIT_ERROR, ""))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="polypwatch", description="Real-time computer-aided polyp detection.")
    sub = ap.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = next(c.handler for c in COMMANDS if c.name == args.command)
    try:
        return handler(args)
    except PolypwatchError as e:
        code, what = next((c, w) for cls, c, w in EXIT_CODES if isinstance(e, cls))
        print(f"polypwatch: {what}{e}", file=sys.stderr)
        return code
