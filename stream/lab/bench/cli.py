"""tools/bench: run the scenarios, write bench.json and bench.md, print the table and the targets."""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

from engines.errors import CheckFailed, ConfigError
from stream.lab.bench import tensorrt_rows
from stream.lab.bench.report import table, targets
from stream.lab.bench.scenarios import (Row, make_clip, median_rows, pipeline, pipeline_recorded, pipeline_with_overlay,
                                        python_module)


def environment() -> dict:
    import cv2
    import numpy
    import onnxruntime
    from engines.runtime.cpu import cpu_info
    env = {"python": platform.python_version(), "platform": platform.platform(), **cpu_info().summary(),
           "cores": __import__("os").cpu_count(), "opencv": cv2.__version__, "onnxruntime": onnxruntime.__version__,
           "numpy": numpy.__version__}
    try:
        import torch
        env["torch"] = torch.__version__
        env["cuda_gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        env["torch"] = None
    return env


SCENARIOS = ("live_1080p30", "live_1080p60", "live_1080p30_torch_cpu", "overlay_1080p30", "replay_1080p30",
             "replay_1080p30_batched", "decode_1080p30", "model_alone_cpu", "baseline_live_1080p30",
             "baseline_fast_1080p30", "model_alone_cpu_int8", "live_1080p30_int8", "live_1080p60_int8",
             "replay_1080p30_int8", "live_1080p30_record_metrics")
CUDA_SCENARIOS = ("live_1080p60_torch_cuda", "replay_1080p30_cuda_batched", "model_alone_cuda")
GPU_REPORT = ("live_1080p60_torch_cuda", "model_alone_cuda", "replay_1080p30_cuda_batched", "decode_1080p30")
CUDA_LIVE = ["engine.backend=torch", "engine.device=cuda", "engine.device_preprocess=true"]
# rows compared by a ratio run in turns (off, on, off, on, ...) so that the machine's drift over minutes hits both
INTERLEAVED = (("live_1080p30", "live_1080p30_record_metrics"),)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.description = ("Latency and throughput of polypwatch next to a baseline single-threaded loop, on generated "
                      "1080p clips.")
    ap.add_argument("--out", default="out/bench", help="folder for clips, bench.json and bench.md")
    ap.add_argument("--seconds", type=float, default=12.0, help="clip length (default 12)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per scenario; medians are reported (default 3)")
    ap.add_argument("--only", default="", help="comma-separated scenario names to run (default: all)")
    ap.add_argument("--model", default="", metavar="FILE",
                    help="an fp32 ONNX model in place of the shipped default (its INT8 rows run its twin, "
                         "<name>.int8.onnx): a candidate's cost before it ships")
    ap.add_argument("--gpu-report", metavar="OUT", help="the whole GPU table into OUT (gpu_report.md/.json): the "
                    "live 1080p60 row (--repeats runs, medians), the stage breakdown, the model-alone floor, GPU "
                    "replay against decode-only; refuses without CUDA; exit 5 when a row failed or a figure is missing")


def groups(selected: list[str]) -> list[tuple[str, ...]]:
    """The selected scenarios in order, the members of an INTERLEAVED pair together when both are selected."""
    out: list[tuple[str, ...]] = []
    for name in selected:
        pair = next((p for p in INTERLEAVED if name in p and all(m in selected for m in p)), None)
        if pair is None:
            out.append((name,))
        elif pair not in out:
            out.append(pair)
    return out


def run_groups(scenarios: dict, selected: list[str], repeats: int) -> dict[str, Row]:
    """Every selected scenario ``repeats`` times (an interleaved pair in turns); medians per scenario, and for a
    pair the on/off ratio of each turn (``paired_ratio``: the median of the turns' ratios, and each)."""
    rows: dict[str, Row] = {}
    for group in groups(selected):
        runs: dict[str, list[Row]] = {n: [] for n in group}
        for k in range(repeats):
            for name in group:
                print(f"[{name}] run {k + 1}/{repeats}", file=sys.stderr, flush=True)
                r = scenarios[name](k)
                r.scenario = name
                runs[name].append(r)
        for name in group:
            rows[name] = median_rows(runs[name])
        if len(group) == 2:
            rows[group[1]].figures["paired_ratio"] = paired_ratio(runs[group[0]], runs[group[1]])
    return rows


def paired_ratio(off: list[Row], on: list[Row]) -> dict:
    """capture→publish p50/p99 of each "on" run over the "off" run just before it; the median of those ratios."""
    out: dict = {"turns": 0}
    for q in ("p50", "p99"):
        ratios = []
        for a, b in zip(off, on):
            x, y = (r.figures.get("capture_to_publish_ms", {}).get(q) for r in (a, b))
            if x and y:
                ratios.append(round(y / x, 3))
        out[q] = round(statistics.median(ratios), 3) if ratios else None
        out[f"{q}_each"] = ratios
        out["turns"] = max(out["turns"], len(ratios))
    return out


def tensorrt_part(env: dict, model: Path, out: Path) -> dict:
    """The report's TensorRT builds where it imports (env["tensorrt"]: its version or None) and the rows they add."""
    env["tensorrt"] = tensorrt_rows.tensorrt_version()
    built = tensorrt_rows.build_engines(model, out) if env["tensorrt"] else {}
    return {"built": built, "rows": [tensorrt_rows.row_name(p) for p, b in built.items() if "engine" in b]}


def run(args) -> int:
    from engines.runtime.model_files import resolve_model_path
    model = resolve_model_path(args.model)
    if not model.is_file():
        raise ConfigError(f"--model {model}: file not found")
    env = environment()
    if args.gpu_report:
        if not env.get("cuda_gpu"):
            raise ConfigError("--gpu-report needs an NVIDIA GPU with CUDA; torch sees none here "
                              f"(torch {env.get('torch') or 'not installed'}). Run it on the GPU machine.")
        args.out, args.only = args.gpu_report, ",".join(GPU_REPORT)
    trt = tensorrt_part(env, model, Path(args.out)) if args.gpu_report else {}
    names = SCENARIOS + (CUDA_SCENARIOS if env.get("cuda_gpu") else ()) + tuple(trt.get("rows", ()))
    if trt.get("rows"):
        args.only += "," + ",".join(trt["rows"])
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(names)
    if unknown:
        raise ConfigError(f"--only: unknown scenario(s) {sorted(unknown)}; expected some of {list(names)}")
    out = Path(args.out)
    work = out / "runs"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    c30 = make_clip(out, 30, (1920, 1080), args.seconds)
    c60 = make_clip(out, 60, (1920, 1080), args.seconds)
    chosen = [f"engine.model={model}"] if args.model else []
    ort = ["engine.backend=onnxruntime", "engine.precision=fp32", *chosen]   # fp32 rows stay fp32 on a VNNI CPU too
    ort8 = ["engine.backend=onnxruntime", "engine.precision=int8", *chosen]
    alone = ["--model", str(model)] if args.model else []
    scenarios = {
        "live_1080p30": lambda k: pipeline(c30, work, f"live30-{k}", ort),
        "live_1080p60": lambda k: pipeline(c60, work, f"live60-{k}", ort),
        "live_1080p30_torch_cpu": lambda k: pipeline(c30, work, f"torch30-{k}",
                                                     ["engine.backend=torch", "engine.device=cpu", *chosen]),
        "overlay_1080p30": lambda k: pipeline_with_overlay(c30, work, f"overlay30-{k}", ort),
        "replay_1080p30": lambda k: pipeline(c30, work, f"replay30-{k}", ort, pace=False),
        "replay_1080p30_batched": lambda k: pipeline(c30, work, f"replay30b-{k}", ort + ["engine.batch_size=4"],
                                                     pace=False),
        "model_alone_cpu": lambda k: python_module(c30, work, f"model-alone-cpu-{k}", "stream.lab.bench.model_alone",
                                                   ["--device", "cpu", *alone], positional_clip=False),
        "model_alone_cpu_int8": lambda k: python_module(c30, work, f"model-alone-cpu-int8-{k}", "stream.lab.bench.model_alone",
                                                        ["--device", "cpu", "--precision", "int8", *alone],
                                                        positional_clip=False),
        "live_1080p30_int8": lambda k: pipeline(c30, work, f"live30-int8-{k}", ort8),
        "live_1080p30_record_metrics": lambda k: pipeline_recorded(c30, work, f"live30-recorded-{k}", ort),
        "live_1080p60_int8": lambda k: pipeline(c60, work, f"live60-int8-{k}", ort8),
        "replay_1080p30_int8": lambda k: pipeline(c30, work, f"replay30-int8-{k}", ort8, pace=False),
        "decode_1080p30": lambda k: python_module(c30, work, f"decode30-{k}", "stream.lab.bench.decode", []),
        "baseline_live_1080p30": lambda k: python_module(c30, work, f"baseline-live30-{k}", "stream.lab.bench.baseline",
                                                         [str(model), "--realtime"]),
        "baseline_fast_1080p30": lambda k: python_module(c30, work, f"baseline-fast30-{k}", "stream.lab.bench.baseline",
                                                         [str(model)]),
    }
    if env.get("cuda_gpu"):
        scenarios["live_1080p60_torch_cuda"] = lambda k: pipeline(c60, work, f"cuda60-{k}", CUDA_LIVE + chosen)
        scenarios["replay_1080p30_cuda_batched"] = lambda k: pipeline(
            c30, work, f"cuda-replay30b-{k}", ["engine.backend=torch", "engine.device=cuda", "engine.batch_size=8",
                                               "engine.threads=0", *chosen], pace=False)
        scenarios["model_alone_cuda"] = lambda k: python_module(c30, work, f"model-alone-cuda-{k}",
                                                                "stream.lab.bench.model_alone", ["--device", "cuda", *alone],
                                                                positional_clip=False)
        if trt.get("rows"):
            scenarios.update(tensorrt_rows.scenarios(trt["built"], lambda name, extra: pipeline(c60, work, name, extra),
                                                     chosen))
    assert set(scenarios) == set(names), "SCENARIOS must list every scenario"
    rows = run_groups(scenarios, [n for n in scenarios if not only or n in only], args.repeats)
    md = table(list(rows.values()))
    tg = targets(rows)
    command = "tools/bench " + " ".join(sys.argv[1:])
    result = {"environment": env, "command": command, "model": str(model), "seconds": args.seconds,
              "repeats": args.repeats,
              "clips": {"1080p30": c30.codec, "1080p60": c60.codec},
              "rows": [asdict(r) for r in rows.values()], "targets": tg, "elapsed_s": round(time.monotonic() - t0, 1)}
    if args.gpu_report:
        from stream.lab.bench.report import gpu_failures, gpu_section
        gmd = gpu_section(rows, env) + "\n" + "\n".join(tensorrt_rows.section(env["tensorrt"], trt["built"]))
        failures = gpu_failures(rows, GPU_REPORT + tuple(trt["rows"])) + tensorrt_rows.failures(env["tensorrt"],
                                                                                              trt["built"])
        result["failures"], result["tensorrt_builds"] = failures, trt["built"]
        (out / "gpu_report.json").write_text(json.dumps(result, indent=1))
        (out / "gpu_report.md").write_text(gmd + "\n")
        print(gmd)
        print(f"\n{out}/gpu_report.json, {out}/gpu_report.md ({result['elapsed_s']} s)")
        if failures:
            raise CheckFailed("the GPU report is incomplete:\n  " + "\n  ".join(failures))
        return 0
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    (out / "bench.md").write_text(f"{md}\n\nTargets:\n" + "\n".join(tg) + "\n")
    print(md)
    print("\nTargets:\n" + "\n".join(tg))
    print(f"\n{out}/bench.json, {out}/bench.md ({result['elapsed_s']} s)")
    return 0
