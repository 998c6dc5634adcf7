"""The GPU report's TensorRT rows: where ``tensorrt`` imports, tools/build_engine builds the model's fp16 and int8
engines (build time, their parity check against ONNX Runtime from the sidecar) and the live 1080p60 pipeline runs
on each (``engine.backend: tensorrt``, the frame path on the device); where it does not, the report says so in
plain words and keeps its torch-CUDA rows. TensorRT's wheels are far larger than what travels to a lent GPU machine
(64 MiB), so on those machines the report is expected to say "not installed".
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PRECISIONS = ("fp16", "int8")


def tensorrt_version() -> str | None:
    """The importable TensorRT's version, or None."""
    try:
        import tensorrt
    except ImportError:
        return None
    return str(tensorrt.__version__)


def row_name(precision: str) -> str:
    return f"live_1080p60_tensorrt_{precision}"


def build_engines(model: Path, out: Path, precisions: tuple[str, ...] = PRECISIONS, check_count: int = 32,
                  timeout_s: float = 1800) -> dict[str, dict]:
    """tools/build_engine once per precision into ``out``/engines: {precision: the build's figures or its error}."""
    from engines.backends.engine_sidecar import read_sidecar, sidecar_path
    folder = out / "engines"
    folder.mkdir(parents=True, exist_ok=True)
    built = {}
    for p in precisions:
        engine = folder / f"{model.name.removesuffix('.onnx')}.{p}.engine"
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "build_engine"), "--onnx", str(model), "--out",
                            str(engine), "--precision", p, "--check-count", str(check_count)],
                           cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, env=dict(os.environ))
        seconds = round(time.monotonic() - t0, 1)
        if r.returncode != 0:
            built[p] = {"error": f"tools/build_engine exit {r.returncode}: {r.stderr.strip()[-400:]}",
                        "build_s": seconds}
            continue
        c = read_sidecar(sidecar_path(engine)).check
        built[p] = {"engine": str(engine), "build_s": seconds, "frames": c.get("frames"),
                    "max_abs_score_diff": c.get("max_abs_score_diff"), "tolerance": c.get("tolerance"),
                    "alert_decision_agreement": c.get("alert_decision_agreement"), "passed": c.get("passed")}
    return built


def scenarios(built: dict[str, dict], run_live, chosen: list[str]) -> dict:
    """The live rows of the engines that were built: ``run_live(name, overrides)`` runs one (the bench's pipeline)."""
    return {row_name(p): (lambda k, e=b["engine"], p=p: run_live(
        f"trt60-{p}-{k}", ["engine.backend=tensorrt", f"engine.engine_file={e}", "engine.device_preprocess=true",
                           *chosen]))
            for p, b in built.items() if "engine" in b}


def section(version: str | None, built: dict[str, dict]) -> list[str]:
    """The report's TensorRT part: the builds, or why there are none."""
    if version is None:
        return ["**TensorRT: not installed on this machine** (`import tensorrt` failed), so no engine was built and "
                "there are no TensorRT rows; the torch-CUDA rows above are the GPU figures. TensorRT's wheels are "
                "larger than what travels to a lent GPU machine; install `polypwatch[tensorrt]` where it can be "
                "installed and run the report again to add them.", ""]
    lines = [f"TensorRT {version}: tools/build_engine, parity with ONNX Runtime fp32 on generated frames", "",
             "| precision | build s | frames | max \\|score diff\\| | tolerance | alert agreement | passed |",
             "|---|---|---|---|---|---|---|"]
    for p, b in built.items():
        if "error" in b:
            lines.append(f"| {p} | {b['build_s']} | — | — | — | — | build failed: {b['error'][-160:]} |")
        else:
            lines.append(f"| {p} | {b['build_s']} | {b['frames']} | {b['max_abs_score_diff']} | {b['tolerance']} | "
                         f"{b['alert_decision_agreement']} | {b['passed']} |")
    return lines + [""]


def failures(version: str | None, built: dict[str, dict]) -> list[str]:
    """A TensorRT that imports but builds nothing is an incomplete report; a missing TensorRT is not."""
    if version is None:
        return []
    return [f"build_engine --precision {p}: {b['error']}" for p, b in built.items() if "error" in b]
