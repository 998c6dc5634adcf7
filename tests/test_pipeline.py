"""The real pipeline: a generated clip through OpenCV, a real ONNX Runtime session, real ZeroMQ over loopback."""
import threading
import time

import pytest
import zmq
from conftest import run_cli

from stream.config import load_config
from stream.detection import Detection
from stream.pipeline import Pipeline
from stream.wire import Status, decode


def _subscribe(endpoint):
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 100000)
    sub.setsockopt(zmq.MAXMSGSIZE, 64 * 1024 * 1024)
    sub.connect(endpoint)
    return sub


def _run_pipeline(cfg, source):
    pipe = Pipeline(cfg, source=str(source))
    result = {}
    th = threading.Thread(target=lambda: result.update(pipe.run()))
    return pipe, th, result


def _collect(sub, th, timeout=60):
    msgs, t_end = [], time.monotonic() + timeout
    while time.monotonic() < t_end:
        if sub.poll(100):
            msgs.append(decode(sub.recv_multipart()))
        elif not th.is_alive():
            break
    return msgs


def test_one_detection_per_processed_frame_in_order(clip, tiny_model, endpoint):
    cfg = load_config(None, [f"engine.model={tiny_model}", f"publisher.endpoint={endpoint}", "capture.pace=false",
                             "publisher.sndhwm=100000", "engine.backend=onnxruntime"])
    pipe, th, summary = _run_pipeline(cfg, clip)
    sub = _subscribe(endpoint)
    pipe.reader.pace = False
    time.sleep(0.3)          # subscriber joined before the first message
    th.start()
    msgs = _collect(sub, th)
    th.join(10)
    dets = [m for m in msgs if isinstance(m, Detection)]
    statuses = [m for m in msgs if isinstance(m, Status)]
    assert summary["processed"] == 120 and summary["dropped"] == 0 and summary["out_of_order"] == 0
    assert [d.seq for d in dets] == list(range(120))
    assert [d.frame_index for d in dets] == list(range(120))
    assert all(d.model_id == "tiny-test" and 0 <= d.score <= 1 for d in dets)
    for d in dets:
        t = d.times_ns
        assert t["capture"] <= t["preprocess"] <= t["infer"] <= t["postprocess"] <= t["alert"] <= t["publish"]
    assert statuses and statuses[-1].state == "stopped" and statuses[-1].processed == 120
    assert summary["capture_to"]["publish"]["count"] == 120 and summary["capture_to"]["publish"]["p50"] > 0


def test_frames_topic_carries_the_video(clip, tiny_model, endpoint):
    cfg = load_config(None, [f"engine.model={tiny_model}", f"publisher.endpoint={endpoint}", "capture.pace=false",
                             "publisher.send_frames=true", "publisher.frame_encoding=raw",
                             "publisher.sndhwm=100000", "pipeline.max_frames=20"])
    pipe, th, summary = _run_pipeline(cfg, clip)
    sub = _subscribe(endpoint)
    time.sleep(0.3)
    th.start()
    msgs = _collect(sub, th)
    th.join(10)
    frames = [m for m in msgs if hasattr(m, "image")]
    assert [f.seq for f in frames] == list(range(20))
    assert frames[0].image.shape == (240, 320, 3)


def test_slow_subscriber_never_blocks_the_pipeline(clip, tiny_model, endpoint):
    """A subscriber that never reads: messages are dropped at the socket, the pipeline finishes on time."""
    cfg = load_config(None, [f"engine.model={tiny_model}", f"publisher.endpoint={endpoint}", "capture.pace=false",
                             "publisher.sndhwm=5", "publisher.send_frames=true", "publisher.frame_encoding=raw"])
    sub = _subscribe(endpoint)
    sub.setsockopt(zmq.RCVHWM, 5)
    sub.setsockopt(zmq.RCVBUF, 4096)
    pipe, th, summary = _run_pipeline(cfg, clip)
    time.sleep(0.3)
    t0 = time.monotonic()
    th.start()
    th.join(60)
    assert not th.is_alive() and summary["processed"] == 120
    assert time.monotonic() - t0 < 30
    sub.close(0)


def test_engine_failures_are_reported_and_repeated_failures_stop_the_run(clip, tiny_model, endpoint):
    from engines.errors import BackendError
    from stream.pipeline import EngineFailing
    cfg = load_config(None, [f"engine.model={tiny_model}", f"publisher.endpoint={endpoint}", "capture.pace=false",
                             "engine.max_consecutive_errors=5"])
    pipe = Pipeline(cfg, source=str(clip))
    real_infer = pipe.detector.backend.infer
    calls = {"n": 0}

    def flaky(batch):
        calls["n"] += 1
        if calls["n"] == 6 or calls["n"] > 32:        # one bad frame, later a dead engine
            raise BackendError("CUDA error: an illegal memory access")
        return real_infer(batch)
    dets = []
    pipe.on_detection = lambda d, f: dets.append(d)
    with pytest.raises(EngineFailing, match=r"engine failed on 5 consecutive frames; last: CUDA error"):
        pipe.detector.backend.infer = flaky
        pipe.run()
    errs = [d for d in dets if d.error]
    assert errs[0].seq == 2 and errs[0].alert.value == "error"   # call 1: open's warm-up, 2-3: the frame-size warm-up
    assert dets[3].error == "" and len(dets) == 29 + 4


@pytest.mark.parametrize("args, code, message", [
    (["run", "--set", "alerts.window=0"], 2, "configuration error: alerts.window: expected a value in 1..1000, got 0"),
    (["run", "--source", "/nonexistent.mp4"], 3, "source error: video /nonexistent.mp4: file not found"),
    (["run", "--set", "engine.model=/nonexistent.onnx"], 4, "model error: model /nonexistent.onnx: file not found"),
    (["run", "--config", "/nonexistent.yaml"], 2, "config /nonexistent.yaml: cannot read"),
])
def test_cli_errors_have_exit_codes_and_messages(args, code, message):
    r = run_cli(*args)
    assert r.returncode == code and message in r.stderr, r.stderr


def test_cli_run_prints_summary(clip, tiny_model, endpoint, tmp_path):
    r = run_cli("run", "--source", str(clip), "--set", f"engine.model={tiny_model}", "--set",
                f"publisher.endpoint={endpoint}", "--set", f"pipeline.detections_log={tmp_path}/d.jsonl",
                "--summary-json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    assert "capture -> publish" in r.stdout
    import json
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["processed"] == len((tmp_path / "d.jsonl").read_text().splitlines())
    assert s["processed"] + s["dropped"] + s["skipped_by_source"] == s["read"] == 120


@pytest.mark.parametrize("args, message", [
    (["run", "--bogus"], "unrecognized arguments: --bogus"),
    (["fly"], "invalid choice: 'fly'"),
    (["replay"], "the following arguments are required: INPUT, --out"),
    (["run", "--set"], "argument --set: expected one argument"),
])
def test_bad_command_lines(args, message):
    r = run_cli(*args)
    assert r.returncode == 2 and message in r.stderr


@pytest.mark.parametrize("tool, args, message", [
    ("tools/build_engine", ["--batch", "1,x"], "--batch: expected MIN,OPT,MAX"),
    ("tools/build_engine", ["--precision", "int4"], "invalid choice: 'int4'"),
    ("tools/train", ["--epochs", "2"], "the following arguments are required: --out"),
    ("tools/bench", ["--only", "nope", "--seconds", "1", "--out", "/tmp/pw-bench-bad"], "unknown scenario(s) ['nope']"),
    ("tools/bench", ["--model", "/nonexistent/candidate.onnx", "--out", "/tmp/pw-bench-bad"],
     "--model /nonexistent/candidate.onnx: file not found"),
])
def test_bad_tool_command_lines(tool, args, message):
    import subprocess
    import sys

    from conftest import ROOT
    r = subprocess.run([sys.executable, tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and message in r.stderr, r.stderr[-500:]


def test_warm_up_runs_the_exact_path_at_the_source_size_before_the_first_frame(clip, tiny_model):
    """Device preprocessing (torch backend on the CPU device here): the frame path is built during warm-up at the
    clip's size, for every pyramid level, and never again for the real frames."""
    from stream.config import load_config
    from stream.pipeline import Pipeline
    cfg = load_config(None, [f"engine.model={tiny_model}", "engine.backend=torch", "engine.device=cpu",
                             "engine.device_preprocess=true", "capture.pace=false", "pipeline.max_frames=12",
                             "publisher.endpoint=tcp://127.0.0.1:*"])
    pipe = Pipeline(cfg, source=str(clip))
    builds = []
    pipe.on_detection = lambda d, f: builds.append(pipe.detector.backend._frame_graph.builds)
    s = pipe.run()
    assert s["warmup"]["frame_shape"] == [240, 320, 3] and s["warmup"]["first_ms"] > 0
    from engines.runtime.preprocess import pyramid_depth
    depth = pyramid_depth(240, 320, pipe.detector.spec)
    assert s["processed"] == 12 and builds == [depth] * 12          # every level at warm-up, none after


def test_gpu_report_refuses_clearly_without_cuda(tmp_path):
    import subprocess
    import sys

    import torch

    from conftest import ROOT
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the report would run (minutes), not refuse")
    r = subprocess.run([sys.executable, "tools/bench", "--gpu-report", str(tmp_path / "g")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--gpu-report needs an NVIDIA GPU with CUDA; torch sees none here" in r.stderr
    assert not (tmp_path / "g").exists()


def test_model_alone_floor_runs_on_the_cpu(tmp_path):
    import json

    from stream.lab.bench.model_alone import main
    assert main([str(tmp_path / "m.json"), "--device", "cpu", "--size", "320x240", "--iters", "5"]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["backend"] == "onnxruntime" and m["warmup"]["frame_shape"] == [240, 320, 3]
    assert m["model_infer_ms"]["count"] == 5 and m["latency_ms"]["p99_9"] >= m["latency_ms"]["p50"] > 0


def test_bench_measures_the_model_it_is_given(tmp_path, tiny_model):
    """A candidate's cost before it ships: --model reaches the scenario, and the result names the file."""
    import json
    import subprocess
    import sys

    from conftest import ROOT
    r = subprocess.run([sys.executable, "tools/bench", "--model", str(tiny_model), "--only", "model_alone_cpu",
                        "--seconds", "1", "--repeats", "1", "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    b = json.loads((tmp_path / "bench.json").read_text())
    assert b["model"] == str(tiny_model) and b["rows"][0]["figures"]["model_id"] == "tiny-test"


def test_batch_size_is_refused_for_a_live_run(clip):
    r = run_cli("run", "--source", str(clip), "--set", "engine.batch_size=4")
    assert r.returncode == 2 and "engine.batch_size: expected 1 for a live (paced) run" in r.stderr


def test_gpu_report_section_from_rows():
    """The GPU report's formatting and target checks, fed with rows shaped like the CUDA scenarios' (the scenarios
    themselves need a GPU)."""
    from stream.lab.bench.report import gpu_section
    from stream.lab.bench.scenarios import Row
    pct = {"count": 720, "p50": 1.1, "p95": 1.4, "p99": 1.9, "p99_9": 2.2, "max": 4.1}
    rows = {"live_1080p60_torch_cuda": Row("live_1080p60_torch_cuda", "c60.mp4", {
                "capture_to_publish_ms": pct, "dropped": 0, "processed": 720, "fps": 60.0,
                "stage_p50_ms": {"preprocess": 0.1, "infer": 0.9}, "stage_p99_ms": {"preprocess": 0.2, "infer": 1.5}}),
            "model_alone_cuda": Row("model_alone_cuda", "c30.mp4", {"graph_replay_ms": pct, "latency_ms": pct}),
            "replay_1080p30_cuda_batched": Row("r", "c30.mp4", {"fps": 400.0}),
            "decode_1080p30": Row("d", "c30.mp4", {"fps": 555.0})}
    md = gpu_section(rows, {"cuda_gpu": "NVIDIA H100", "cpu": "x", "cores": 16, "torch": "2.11"})
    assert "| infer | 0.9 | 1.5 |" in md and "model alone, CUDA graph replay: p50 1.1" in md
    assert "p99.9 ≤ 2.5 ms: 2.2 ms — met" in md and "max ≤ 5 ms after warm-up: 4.1 ms — met" in md
    assert "400.0 vs 555.0 fps = 72% — MISSED" in md


def test_a_gpu_report_with_a_failed_or_missing_row_is_not_a_report():
    """tools/bench --gpu-report exits 1 and says why when a GPU row errored, did not run, or lacks a target's figure."""
    from stream.lab.bench.cli import GPU_REPORT
    from stream.lab.bench.report import gpu_failures
    from stream.lab.bench.scenarios import Row
    pct = {"count": 720, "p50": 1.1, "p95": 1.4, "p99": 1.9, "p99_9": 2.2, "max": 4.1}
    good = {"live_1080p60_torch_cuda": Row("l", "c60.mp4", {"capture_to_publish_ms": pct, "dropped": 0}),
            "model_alone_cuda": Row("m", "c30.mp4", {"graph_replay_ms": pct}),
            "replay_1080p30_cuda_batched": Row("r", "c30.mp4", {"fps": 400.0}),
            "decode_1080p30": Row("d", "c30.mp4", {"fps": 555.0})}
    assert gpu_failures(good, GPU_REPORT) == []
    bad = dict(good, model_alone_cuda=Row("m", "c30.mp4", {"error": "ModuleNotFoundError: No module named 'zmq'"}))
    del bad["decode_1080p30"]
    bad["replay_1080p30_cuda_batched"] = Row("r", "c30.mp4", {})
    assert gpu_failures(bad, GPU_REPORT) == [
        "model_alone_cuda: failed: ModuleNotFoundError: No module named 'zmq'", "decode_1080p30: did not run",
        "replay_1080p30_cuda_batched: no fps in its figures (a target cannot be judged)"]


def test_the_gpu_kit_dry_run_says_what_it_bundles_and_that_it_fits():
    import subprocess
    import sys

    from conftest import ROOT
    r = subprocess.run([sys.executable, "tools/gpu_kit", "--dry-run"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "pyzmq" in r.stdout and "efficientnet-lite-pytorch" in r.stdout and "run: bash .gpukit/run.sh" in r.stdout
    mib = float(r.stdout.split("beside a checkout of ")[1].split(" MiB")[0])
    assert mib + 2 < 64                      # the wheels are under 1 MiB (measured: 0.9 MiB)
    from stream.lab.bench.gpu_kit import RUN_SH
    assert "--no-index" in RUN_SH and "tools/bench --gpu-report" in RUN_SH
