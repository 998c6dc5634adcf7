"""``polypwatch``: the one command line. Only this module maps exceptions to exit codes (the table below, also in
README.md); the commands are registered in stream/commands.py."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from engines.errors import (
    CheckFailed,
    ConfigError,
    DatasetError,
    Interrupted,
    ModelError,
    PolypwatchError,
    SourceError,
    TruthError,
)
from stream.commands import BY_NAME, COMMANDS, GROUPS

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_SOURCE, EXIT_MODEL, EXIT_CHECK, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130

# library exceptions -> (exit code, message prefix); first match wins, PolypwatchError last
EXIT_CODES = ((ConfigError, EXIT_CONFIG, "configuration error: "), (TruthError, EXIT_CONFIG, "ground truth error: "),
              (SourceError, EXIT_SOURCE, "source error: "), (DatasetError, EXIT_SOURCE, "data error: "),
              (ModelError, EXIT_MODEL, "model error: "), (CheckFailed, EXIT_CHECK, "check failed: "),
              (Interrupted, EXIT_INTERRUPTED, "interrupted: "), (PolypwatchError, EXIT_ERROR, ""))


def _epilog() -> str:
    lines = []
    for group in GROUPS:
        lines.append(f"{group}:")
        width = max(len(c.name) for c in COMMANDS) + 2
        lines += [f"  {c.name:<{width}}{c.help}" for c in COMMANDS if c.group == group]
    lines.append("exit codes: 0 ok, 1 other error, 2 configuration or usage, 3 source or data, 4 model, "
                 "5 a check failed, 130 interrupted")
    return "\n".join(lines)


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``selected``'s module is imported to add its options (the others are listed by name)."""
    ap = argparse.ArgumentParser(prog="polypwatch", description="Real-time computer-aided polyp detection.",
                                 epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for c in COMMANDS:
        p = sub.add_parser(c.name, description=c.help)     # listed by group in the epilog
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        if c.name == selected:
            getattr(importlib.import_module(c.module), c.arguments)(p)
    return ap


def check_path_options(args) -> None:
    """Every option and argument given on the command line that could be a path, by the configuration's own rule
    (``stream.config.check_path_value``: no NUL, no component over 255 bytes): a ConfigError naming the option, before
    any work, never an OSError traceback."""
    from stream.config import check_path_value
    for key, value in vars(args).items():
        if key == "set":
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str):
                check_path_value(f"--{key.replace('_', '-')}", v)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(selected if selected in BY_NAME else None).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = BY_NAME[args.command]
    handler = getattr(importlib.import_module(command.module), command.handler)
    try:
        check_path_options(args)
        return handler(args)
    except PolypwatchError as e:
        code, what = next((c, w) for cls, c, w in EXIT_CODES if isinstance(e, cls))
        print(f"polypwatch {command.name}: {what}{e}", file=sys.stderr)
        return code
