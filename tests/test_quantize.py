"""The INT8 twin: static quantisation with ONNX Runtime end to end on a tiny real model, calibration that never
reads a validation or test frame, and ``engine.precision`` choosing between the two files."""
import json
import shutil

import numpy as np
import onnx
import pytest
from conftest import run_cli

from engines.errors import ConfigError, DatasetError
from engines.runtime.cpu import CpuInfo, parse_cpuinfo
from engines.runtime.precision import choose_precision, int8_twin

VNNI = CpuInfo("a CPU with VNNI", "25/17", frozenset({"avx2", "avx512f", "avx512_vnni"}))
AVX2 = CpuInfo("a CPU without", "25/1", frozenset({"avx2"}))


@pytest.fixture(scope="module")
def twin(tmp_path_factory, shipped_model, data_root):
    """A copy of the shipped model (real weights: a random tiny network scores every frame alike) with an INT8 twin
    beside it, calibrated on the tiny data root's training frames."""
    from engines.lab.data.calibration import training_frames
    from engines.compile.quantize import QuantizeOptions, quantize_model
    folder = tmp_path_factory.mktemp("twin")
    fp32 = folder / "tiny.onnx"
    shutil.copy(shipped_model, fp32)
    record = quantize_model(QuantizeOptions(onnx=fp32, calibration=training_frames(data_root, 24), count=24))
    return fp32, int8_twin(fp32), record


def test_the_twin_is_int8_beside_its_model_with_float_outputs_and_its_own_metadata(twin):
    from engines.runtime.metadata import read_onnx_metadata
    fp32, int8, record = twin
    assert int8 == fp32.with_name("tiny.int8.onnx") and int8.is_file() and record["out"] == str(int8)
    graph = onnx.load(str(int8)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in graph.output)
    a, b = read_onnx_metadata(fp32), read_onnx_metadata(int8)
    assert (b.precision, a.precision) == ("int8", "fp32")
    assert (b.model_id, b.preprocess, b.threshold) == (a.model_id, a.preprocess, a.threshold)
    q = b.quantization
    assert q["fp32_model"] == "tiny.onnx" and q["calibration"]["frames"] == 24
    assert set(q["calibration"]["frames_per_source"]) == {"kvasir", "cvc-colondb", "polypgen-A", "polypgen-B", "bkai-igh"}
    assert {"/Sigmoid", "/Sigmoid_1", "/net/cls/Gemm", "/net/heat/Conv"} <= set(q["kept_fp32"])


def test_the_twin_scores_like_its_model(twin, clip):
    """Real ONNX Runtime sessions on generated frames through the deployed preprocessing: scores and heat maps
    within a few hundredths of fp32."""
    import cv2

    from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
    from engines.runtime.metadata import read_onnx_metadata
    from engines.runtime.preprocess import preprocess
    fp32, int8, _ = twin
    spec = read_onnx_metadata(fp32).preprocess
    cap = cv2.VideoCapture(str(clip))
    frames = [cap.read()[1] for _ in range(120)][::4]     # spread over the clip: polyps in some
    with OnnxRuntimeBackend(fp32, threads=1) as a, OnnxRuntimeBackend(int8, threads=1) as b:
        outs = [(a.infer(x), b.infer(x)) for x in (preprocess(f, spec).tensor for f in frames)]
    ds = np.array([abs(float(p["score"][0]) - float(q["score"][0])) for p, q in outs])
    dh = np.array([np.abs(p["heatmap"] - q["heatmap"]).max() for p, q in outs])
    print(f"score |diff| max {ds.max():.4f} mean {ds.mean():.4f}; heat map max {dh.max():.4f}")
    assert ds.mean() < 0.03 and ds.max() < 0.15 and dh.max() < 0.25, (ds.mean(), ds.max(), dh.max())
    assert ds.max() > 0                                    # it is another model, not a copy of the file
    scores = np.array([float(p["score"][0]) for p, _ in outs])
    assert scores.std() > 0.02                             # and the frames are told apart


def test_calibration_never_reads_a_validation_or_test_frame(data_root, monkeypatch):
    import engines.lab.data.frames as frames_module
    from engines.compile.calibration import calibration_batches
    from engines.lab.data.calibration import check_training_only, training_frames
    from engines.lab.data.sources import load_sources
    from engines.runtime.preprocess import PreprocessSpec
    sources = load_sources(data_root)
    held = {s.image for src in sources.values() for s in src.val + src.test}
    trained = {s.image for src in sources.values() for s in src.train}
    read = []
    real = frames_module.read_image
    monkeypatch.setattr(frames_module, "read_image", lambda p: read.append(p) or real(p))
    cal = training_frames(data_root, 1000)                 # more than there are: every training frame once
    batches = list(calibration_batches(cal, PreprocessSpec(input_height=64, input_width=64), 1000, 8))
    assert sum(len(b) for b in batches) == len(read) == len(cal.reader.samples) > 20
    assert held and not set(read) & held and set(read) <= trained
    assert {"frame", "tower"} == {s.view for s in cal.reader.samples}
    leak = next(s for src in sources.values() for s in src.val)
    with pytest.raises(DatasetError, match="calibration: 1 frame\\(s\\) of a validation or test split"):
        check_training_only([*cal.reader.samples, leak], sources)


@pytest.mark.parametrize("requested, cpu, has_twin, expect, reason", [
    ("auto", VNNI, True, "int8", "INT8 twin found and this CPU has avx512_vnni"),
    ("auto", AVX2, True, "fp32", "no 8-bit dot-product instruction"),
    ("auto", VNNI, False, "fp32", "has no INT8 twin"),
    ("fp32", VNNI, True, "fp32", "asked for"),
    ("int8", AVX2, True, "int8", "none, may be slower"),
])
def test_precision_choice(tmp_path, tiny_model, requested, cpu, has_twin, expect, reason):
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_model, model)
    if has_twin:
        shutil.copy(tiny_model, int8_twin(model))
    c = choose_precision(model, requested, "onnxruntime", cpu)
    assert c.precision == expect and reason in c.reason
    assert c.model_path == (int8_twin(model) if expect == "int8" else model)
    assert c.record()["model_file"] == str(c.model_path)


@pytest.mark.parametrize("requested, backend, file, message", [
    ("int8", "onnxruntime", "m.onnx", r"int8 asked for, but m.onnx has no INT8 twin .*tools/quantize"),
    ("int8", "torch", "m.onnx", r"int8 runs with engine.backend onnxruntime, not 'torch'"),
    ("fp32", "onnxruntime", "m.int8.onnx", r"fp32 asked for, but engine.model .*m.int8.onnx is an INT8 file"),
    ("int4", "onnxruntime", "m.onnx", r"engine.precision: expected one of \['auto', 'fp32', 'int8'\], got 'int4'"),
])
def test_precision_refusals_name_the_key(tmp_path, tiny_model, requested, backend, file, message):
    model = tmp_path / file
    shutil.copy(tiny_model, model)
    with pytest.raises(ConfigError, match=message):
        choose_precision(model, requested, backend, VNNI)


def test_a_bad_precision_in_the_configuration_names_the_key():
    from stream.config import load_config
    with pytest.raises(ConfigError, match=r"engine.precision: expected one of \['auto', 'fp32', 'int8'\], got 'fp16'"):
        load_config(None, ["engine.precision=fp16"])
    assert load_config(None, []).engine.precision == "auto"


def test_the_precision_is_in_the_run_summary_and_the_replay_metrics(twin, clip, endpoint, tmp_path):
    fp32, int8, _ = twin
    for asked, expect, file in (("int8", "int8", int8), ("fp32", "fp32", fp32)):
        summary = tmp_path / f"{asked}.json"
        r = run_cli("run", "--source", str(clip), "--summary-json", str(summary), "--set", f"engine.model={fp32}",
                    "--set", f"engine.precision={asked}", "--set", f"publisher.endpoint={endpoint}",
                    "--set", "capture.pace=false", "--set", "pipeline.max_frames=10")
        assert r.returncode == 0, r.stderr[-2000:]
        s = json.loads(summary.read_text())
        assert (s["precision"], s["model_file"]) == (expect, str(file)) and "asked for" in s["precision_reason"]
        assert s["threads"] == {"onnxruntime": 2, "opencv": 1}      # the defaults: no OpenCV pool beside ORT's
        assert f"precision {expect} (asked for" in r.stdout
    r = run_cli("replay", str(clip), "--out", str(tmp_path / "qa"), "--no-video", "--set", f"engine.model={fp32}",
                "--set", "engine.precision=int8")
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "qa" / "metrics.json").read_text())
    assert m["precision"] == "int8" and m["model_file"] == str(int8)
    page = (tmp_path / "qa" / "report.html").read_text()
    assert "precision int8" in page and "precision int8" in r.stdout
    r = run_cli("run", "--source", str(clip), "--set", f"engine.model={tmp_path / 'none.onnx'}", "--set",
                "engine.precision=int8", "--set", f"publisher.endpoint={endpoint}")
    assert r.returncode in (2, 4) and "engine" in r.stderr


def test_cpuinfo_flags_and_the_int8_instruction():
    text = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
            "flags\t\t: fpu avx2 avx512f avx512_vnni\n\nprocessor\t: 1\nflags\t\t: nothing\n")
    c = parse_cpuinfo(text)
    assert (c.model, c.family_model, c.int8_dot) == ("AMD EPYC", "25/17", "avx512_vnni")
    assert c.summary() == {"cpu": "AMD EPYC", "cpu_family_model": "25/17", "avx2": True, "avx512": True,
                           "int8_dot": "avx512_vnni"}
    assert parse_cpuinfo("model name\t: old\nflags\t\t: sse2 avx2\n").int8_dot == ""
