"""One command line: every command line written in README.md and docs/ parses as written (its command exists, its
options, choices and required arguments are accepted), every tools/NAME and the installed `polypwatch` answer
--help when run as programs (tools/ from the system Python of a fresh machine too), and `polypwatch --help` lists
every command by group with the exit-code table."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT
from stream.cli import EXIT_CODES, build_parser
from stream.commands import BY_NAME, COMMANDS, GROUPS

PROGRAM = re.compile(r"^(\.venv/bin/polypwatch|tools/[a-z_]+)(\s|$)")


def documented_lines() -> list[tuple[str, str]]:
    out = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in doc.read_text().split("```")[1::2]:
            for line in block.replace("\\\n", " ").splitlines():
                if PROGRAM.match(line.strip()):
                    out.append((doc.name, line.strip()))
    return out


def polypwatch_argv(line: str) -> list[str]:
    tokens = shlex.split(line, comments=True)
    prog = Path(tokens[0]).name
    return tokens[1:] if prog == "polypwatch" else [prog.replace("_", "-"), *tokens[1:]]


LINES = documented_lines()


def test_the_docs_have_command_lines_to_check():
    programs = {Path(shlex.split(ln, comments=True)[0]).name for _, ln in LINES}
    assert len(LINES) > 40 and programs >= {"polypwatch", "train", "evaluate"}


@pytest.mark.parametrize("doc, line", LINES, ids=[f"{d}:{i}" for i, (d, _) in enumerate(LINES)])
def test_every_documented_command_line_parses_as_written(doc, line):
    argv = polypwatch_argv(line)
    assert argv and argv[0] in BY_NAME, f"{doc}: {line!r}: no command {argv[:1]}"
    try:
        build_parser(argv[0]).parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"{doc}: {line!r} does not parse (argparse exit {e.code})")


def _programs() -> list[str]:
    documented = {shlex.split(ln, comments=True)[0] for _, ln in LINES}
    return sorted(documented | {f"tools/{p.name}" for p in (ROOT / "tools").iterdir()})


@pytest.mark.parametrize("program", _programs())
def test_every_program_answers_help_when_run_as_written(program):
    path = ROOT / program
    if program.startswith(".venv/") and not path.exists():
        pytest.skip("no .venv here (made by `make setup`)")
    r = subprocess.run([str(path), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "usage: polypwatch" in r.stdout


def test_tools_run_from_the_system_python_of_a_fresh_machine():
    """A Python without the project's packages (here: with them hidden) starts the tool again in .venv, or says in
    one line what to run first."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    r = subprocess.run(["/usr/bin/env", "python3", "-S", "tools/build_engine", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, env=env)
    if (ROOT / ".venv" / "bin" / "python").exists():
        assert r.returncode == 0 and "TensorRT >=10.0,<12" in " ".join(r.stdout.split()), r.stderr
    else:
        assert r.returncode == 1 and "run `make setup`" in r.stderr


def test_help_lists_every_command_by_group_and_the_exit_codes():
    text = build_parser().format_help()
    for group in GROUPS:
        assert f"{group}:" in text
    for c in COMMANDS:
        assert re.search(rf"^  {re.escape(c.name)}\s", text, re.M), c.name
    assert "exit codes: 0 ok, 1 other error, 2 configuration or usage, 3 source or data, 4 model, 5 a check " \
           "failed, 130 interrupted" in text
    readme = (ROOT / "README.md").read_text()
    for code in sorted({c for _, c, _ in EXIT_CODES} | {0}):
        assert re.search(rf"^\| {code} \|", readme, re.M), f"README's exit-code table lacks {code}"


def test_every_tool_is_a_link_to_the_one_wrapper():
    tools = [p for p in (ROOT / "tools").iterdir() if p.name != "polypwatch"]
    assert tools and all(p.is_symlink() and p.resolve() == (ROOT / "tools" / "polypwatch").resolve() for p in tools)
    assert {p.name.replace("_", "-") for p in tools} <= set(BY_NAME)
