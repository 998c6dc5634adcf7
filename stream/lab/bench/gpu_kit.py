"""The GPU kit: what a bare GPU machine lacks for ``tools/bench --gpu-report``, in one folder that travels with the
checkout, and the one command that installs it there without a package index and runs the report.

A bare GPU machine has torch with CUDA, ONNX Runtime for the CPU, OpenCV, numpy and PyYAML, but no pyzmq (the
pipeline's publisher), no ``efficientnet-lite-pytorch`` (the network definition the torch backend rebuilds the
shipped checkpoint with; the ImageNet weights wheel is not needed: the checkpoint holds the weights), no TensorRT and
no package index. The shipped models are tracked files and travel with the checkout. ``make gpu-kit`` downloads
the wheels here (PyPI) into ``.gpukit/`` (ignored by git) and writes ``.gpukit/run.sh``; on the GPU machine
``bash .gpukit/run.sh`` installs them into /tmp/site and writes the report under ``$OUT`` (or ``out/``).

``.gpukit/`` is ignored, so a copy of the checkout that takes tracked files leaves it behind: the device call must
name it, ``carry: [".gpukit"]`` (docs/BENCHMARKS.md). TensorRT cannot be in the kit (its wheels are far over the 64
MiB that travel); the report builds engines only where ``tensorrt`` already imports and says so where it does not.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from engines.errors import CheckFailed

WHEELS = ("pyzmq>=25", "efficientnet-lite-pytorch==0.1.0")
LIMIT_BYTES = 64 << 20                 # what travels to the GPU machine: the checkout plus the kit
DEVICE_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

RUN_SH = """#!/usr/bin/env bash
# polypwatch GPU kit: install the bundled wheels without a package index, then the GPU report (one call).
# Run from the repository root (where the GPU machine runs commands): bash .gpukit/run.sh
set -euo pipefail
kit="$(cd "$(dirname "$0")" && pwd)"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$kit"/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python3 -c "import zmq, efficientnet_lite_pytorch, torch; assert torch.cuda.is_available(), 'no CUDA device'"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c "import tensorrt; print('TensorRT', tensorrt.__version__, '(the report builds fp16 and int8 engines)')" \
  2>/dev/null || echo "TensorRT: not installed here; the report says so and gives the torch-CUDA rows"
python3 tools/bench --gpu-report "${OUT:-out}/gpu-report" --repeats "${REPEATS:-3}" --seconds "${SECONDS_PER_CLIP:-8}"
"""


def tracked_bytes(root: Path) -> int:
    """Bytes of the files git would send (tracked and untracked-not-ignored)."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True,
                           check=True).stdout.split(b"\0")
    return sum((root / n.decode()).stat().st_size for n in names if n and (root / n.decode()).is_file())


def download(out: Path, python_version: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           python_version, "--implementation", "cp", *(a for p in PLATFORMS for a in ("--platform", p)),
           "-d", str(out), *WHEELS]
    subprocess.run(cmd, check=True)
    return sorted(out.glob("*.whl"))


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", default=".gpukit", help="the kit's folder (default .gpukit, ignored by git)")
    ap.add_argument("--python-version", default=DEVICE_PYTHON,
                    help=f"the GPU machine's Python (default {DEVICE_PYTHON}); this machine's to test the kit here")
    ap.add_argument("--dry-run", action="store_true", help="say what would be bundled and sent; download nothing")


def run(args) -> int:
    root = Path(__file__).resolve().parents[2]
    out = root / args.out if not Path(args.out).is_absolute() else Path(args.out)
    tree = tracked_bytes(root)
    if args.dry_run:
        print(f"would bundle {', '.join(WHEELS)} for CPython {args.python_version} (x86-64 manylinux) into {out}, "
              f"beside a checkout of {tree / 2**20:.1f} MiB (limit {LIMIT_BYTES >> 20} MiB), and run: bash "
              f"{args.out}/run.sh")
        return 0
    wheels = download(out, args.python_version)
    (out / "run.sh").write_text(RUN_SH)
    kit = sum(w.stat().st_size for w in wheels)
    for w in wheels:
        print(f"  {w.name}  {w.stat().st_size / 2**20:.2f} MiB")
    total = tree + kit
    print(f"kit {kit / 2**20:.1f} MiB + checkout {tree / 2**20:.1f} MiB = {total / 2**20:.1f} MiB "
          f"(limit {LIMIT_BYTES >> 20} MiB); {args.out} is ignored by git: name it in the device call's carry "
          f"([\"{args.out}\"]); on the GPU machine: bash {args.out}/run.sh")
    if total > LIMIT_BYTES:
        raise CheckFailed(f"{total / 2**20:.1f} MiB is over the {LIMIT_BYTES >> 20} MiB a GPU call takes")
    return 0

