"""tools/build_engine -> parity check -> sidecar -> load -> run, end to end on the TensorRT stand-in
(tests/standin/tensorrt: the API the project calls, engines run by ONNX Runtime on the CPU). Runs in every
`make test`, no GPU needed: a first build, a rebuild after the model changed, a build stopped between engine and
sidecar, a foreign sidecar, a failed parity check, an engine with fp16 I/O, a foreign timing cache, another TensorRT
version, an int8 engine with its twin's threshold, and `polypwatch run` with engine.backend tensorrt."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from engines.backends.engine_sidecar import EngineMismatch, GpuInfo, read_sidecar, sha256_file, sidecar_path
from engines.compile.engine import BuildError, BuildOptions, EngineCheckFailed, build
from engines.errors import BackendError, ModelError

STANDIN = ROOT / "tests" / "standin"


@pytest.fixture
def trt(monkeypatch):
    """The stand-in as ``tensorrt`` for this test only; its record of names used starts empty."""
    monkeypatch.syspath_prepend(str(STANDIN))
    sys.modules.pop("tensorrt", None)
    import tensorrt
    tensorrt.CALLED.clear()
    yield tensorrt
    sys.modules.pop("tensorrt", None)


@pytest.fixture
def model(tiny_model, tmp_path):
    """A copy of the tiny model (with its .pt) that a test may change."""
    m = tmp_path / "m.onnx"
    shutil.copy(tiny_model, m)
    shutil.copy(tiny_model.with_suffix(".pt"), m.with_suffix(".pt"))
    return m


def _frames(n=3, size=64):
    return np.random.default_rng(1).standard_normal((n, 3, size, size)).astype(np.float32)


def _ort(model, x):
    from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
    with OnnxRuntimeBackend(model) as be:
        return be.infer(x)


def _engine(model, engine, x, **kw):
    from engines.backends.tensorrt_backend import TensorRTBackend
    with TensorRTBackend(engine, model, **kw) as be:
        return be.infer(x)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_first_build_checks_writes_and_loads(trt, model, tmp_path, precision):
    out = tmp_path / "e.engine"
    s = build(BuildOptions(onnx=model, out=out, precision=precision, check_count=4))
    assert s.check["passed"] and s.check["frames"] == 4 and s.gpu.name.startswith("polypwatch TensorRT stand-in")
    on_disk = read_sidecar(sidecar_path(out))
    assert on_disk == s and on_disk.engine_sha256 == sha256_file(out) and on_disk.precision == precision
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []
    x = _frames(2)
    ref, got = _ort(model, x), _engine(model, out, x, max_batch=4)
    assert got["score"].shape == ref["score"].shape and got["heatmap"].shape == ref["heatmap"].shape
    assert np.abs(got["score"] - ref["score"]).max() <= s.check["tolerance"]


def test_a_rebuild_after_the_model_changed_builds_and_the_old_engine_is_refused(trt, model, tmp_path):
    from engines.runtime.metadata import read_onnx_metadata, write_onnx_metadata
    import dataclasses
    out = tmp_path / "e.engine"
    build(BuildOptions(onnx=model, out=out, precision="fp32", check_count=2))
    write_onnx_metadata(model, dataclasses.replace(read_onnx_metadata(model), threshold=0.4))   # a new model file
    with pytest.raises(EngineMismatch, match="built from another model"):
        _engine(model, out, _frames(1))
    s = build(BuildOptions(onnx=model, out=out, precision="fp32", check_count=2))           # the old code refused
    assert s.onnx_sha256 == sha256_file(model) and s.check["passed"]
    assert _engine(model, out, _frames(1))["score"].shape[0] == 1


@pytest.mark.parametrize("stop_at", [1, 2])
def test_a_build_stopped_between_engine_and_sidecar_leaves_nothing_that_loads_wrongly(trt, model, tmp_path,
                                                                                     monkeypatch, stop_at):
    """stop_at 1: before the engine is moved into place (the old pair stays and loads); 2: after the engine, before
    its sidecar (the new engine beside the old sidecar is refused by hash, never loaded under the old 'passed')."""
    import engines.compile.engine as engine_module
    from engines.runtime.metadata import read_onnx_metadata, write_onnx_metadata
    import dataclasses
    out = tmp_path / "e.engine"
    first = build(BuildOptions(onnx=model, out=out, precision="fp32", check_count=2))
    calls = []
    real = os.replace

    def dying_replace(a, b):
        calls.append(b)
        if len(calls) == stop_at:
            raise KeyboardInterrupt("killed")
        return real(a, b)

    monkeypatch.setattr(engine_module.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        build(BuildOptions(onnx=model, out=out, precision="fp16", check_count=2))
    monkeypatch.setattr(engine_module.os, "replace", real)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    assert read_sidecar(sidecar_path(out)) == first
    if stop_at == 1:
        assert _engine(model, out, _frames(1))["score"].shape[0] == 1
    else:
        with pytest.raises(EngineMismatch, match="not the engine its sidecar describes .*stopped half way"):
            _engine(model, out, _frames(1))
    del read_onnx_metadata, write_onnx_metadata, dataclasses


def test_a_foreign_sidecar_is_refused(trt, model, tmp_path):
    import dataclasses
    a, b = tmp_path / "a.engine", tmp_path / "b.engine"
    build(BuildOptions(onnx=model, out=a, precision="fp32", check_count=2))
    build(BuildOptions(onnx=model, out=b, precision="fp16", check_count=2))
    shutil.copy(sidecar_path(b), sidecar_path(a))                 # b's sidecar beside a's engine
    with pytest.raises(EngineMismatch, match="not the engine its sidecar describes"):
        _engine(model, a, _frames(1))
    s = read_sidecar(sidecar_path(b))
    dataclasses.replace(s, gpu=GpuInfo("NVIDIA L4", "8.9")).write(sidecar_path(b))   # written for another GPU
    with pytest.raises(EngineMismatch, match=r"built for NVIDIA L4 \(compute capability 8.9\), this GPU is polypwatch"):
        _engine(model, b, _frames(1))
    sidecar_path(b).write_text(json.dumps({"format": "polypwatch-tensorrt-engine", "version": 1}))
    with pytest.raises(ModelError, match="expected format .* version 2, got .* version 1 \\(rebuild"):
        _engine(model, b, _frames(1))


def test_a_failed_parity_check_keeps_the_old_engine_and_the_failed_one_beside(trt, shipped_model, tmp_path):
    """The shipped model's TensorRT twin against a tolerance no int8 engine meets (real weights: the tiny random
    network scores every frame alike, int8 or not)."""
    from engines.backends.tensorrt_backend import TensorRTBackend
    from engines.compile.network_onnx import tensorrt_twin
    model = tmp_path / shipped_model.name
    shutil.copy(shipped_model, model)
    shutil.copy(tensorrt_twin(shipped_model), tensorrt_twin(model))
    out = tmp_path / "e.engine"
    good = build(BuildOptions(onnx=model, out=out, precision="fp32", check_count=2))
    with pytest.raises(EngineCheckFailed, match=r"max \|score difference\| .* > tolerance 1e-09 .*kept for inspection "
                                                r"as .*e.engine.failed .*e.engine is untouched"):
        build(BuildOptions(onnx=model, out=out, precision="int8", check_count=4, tolerance=1e-9))
    assert read_sidecar(sidecar_path(out)) == good                 # the working engine is still there
    failed = tmp_path / "e.engine.failed"
    assert not read_sidecar(sidecar_path(failed)).check["passed"]
    with pytest.raises(EngineMismatch, match="failed its check when it was built"):
        TensorRTBackend(failed, model).open()


@pytest.mark.filterwarnings("ignore:the float32 number")
def test_an_engine_with_fp16_inputs_and_outputs_is_refused_with_a_message(trt, model, tmp_path):
    import onnx
    from onnxconverter_common import float16
    half_io = tmp_path / "half-io.onnx"
    onnx.save(float16.convert_float_to_float16(onnx.load(str(model)), keep_io_types=False), str(half_io))
    with pytest.raises(ModelError, match=r"tensor 'image' is DataType.HALF, expected float32 inputs and outputs"):
        build(BuildOptions(onnx=half_io, out=tmp_path / "e.engine", precision="fp32", check_count=2))
    assert not (tmp_path / "e.engine").exists() and not any("partial" in p.name for p in tmp_path.iterdir())


def test_the_timing_cache_is_used_and_a_foreign_one_is_said_and_kept(trt, model, tmp_path):
    cache = tmp_path / "timing.cache"
    s = build(BuildOptions(onnx=model, out=tmp_path / "a.engine", precision="fp32", check_count=2,
                           timing_cache=str(cache)))
    assert s.timing_cache == "used" and cache.read_bytes().endswith(trt.HOST_DEVICE[0].encode())
    foreign = b"POLYPWATCH-TRT-STANDIN-CACHE:NVIDIA H100 80GB HBM3"
    cache.write_bytes(foreign)
    s = build(BuildOptions(onnx=model, out=tmp_path / "b.engine", precision="fp32", check_count=2,
                           timing_cache=str(cache)))
    assert s.timing_cache.startswith("not used: TensorRT refused") and cache.read_bytes() == foreign


@pytest.mark.parametrize("version", ["10.0.1", "11.1.0"])
def test_an_engine_of_another_tensorrt_version_is_refused(trt, model, tmp_path, monkeypatch, version):
    out = tmp_path / "e.engine"
    monkeypatch.setattr(trt, "__version__", version)
    build(BuildOptions(onnx=model, out=out, precision="fp32", check_count=2))     # builds on 10.x and 11.x alike
    monkeypatch.setattr(trt, "__version__", "10.16.0")
    with pytest.raises(EngineMismatch, match=f"built with TensorRT {version}, this is TensorRT 10.16.0"):
        _engine(model, out, _frames(1))


def test_an_int8_engine_reports_int8_and_alerts_at_its_twins_threshold(trt, model, tmp_path):
    from engines.compile.calibration import CalibrationSet
    from engines.compile.quantize import QuantizeOptions, quantize_model
    from engines.detector import Detector
    from stream.config import load_config
    frames = CalibrationSet.from_images("noise", np.random.default_rng(0).integers(0, 255, (8, 96, 96, 3), np.uint8))
    quantize_model(QuantizeOptions(onnx=model, calibration=frames, count=8, target="tensorrt", threshold=0.37))
    out = tmp_path / "e.engine"
    s = build(BuildOptions(onnx=model, out=out, precision="int8", check_count=4, tolerance=1.0))
    assert json.loads(s.model_metadata)["threshold"] == 0.37
    cfg = load_config(None, [f"engine.backend=tensorrt", f"engine.engine_file={out}", f"engine.model={model}"])
    det = Detector(cfg.engine, cfg.preprocess)
    assert det.precision.precision == "int8" and det.meta.threshold == 0.37
    with det:
        r = det.detect(np.full((96, 96, 3), 120, np.uint8))
    assert 0.0 <= r.score <= 1.0


def test_the_frame_path_keeps_its_own_buffers_when_infer_takes_another_batch(trt, model, tmp_path):
    """A graph keeps the addresses it was captured with: a batch of another size through infer() must not free them."""
    from engines.backends.tensorrt_backend import TensorRTBackend
    from engines.runtime.metadata import read_onnx_metadata
    from engines.runtime.preprocess import find_active_area
    out = tmp_path / "e.engine"
    build(BuildOptions(onnx=model, out=out, precision="fp32", check_count=2))
    spec = read_onnx_metadata(model).preprocess
    img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    with TensorRTBackend(out, model, max_batch=4) as be:
        first = be.infer_image(img, find_active_area(img, spec), spec)
        ptrs = {n: t.data_ptr() for n, t in be._graph_bufs.items()}
        be.infer(_frames(3))
        be.infer(_frames(1))
        again = be.infer_image(img, find_active_area(img, spec), spec)
        assert {n: t.data_ptr() for n, t in be._graph_bufs.items()} == ptrs
    np.testing.assert_allclose(again["score"], first["score"], atol=1e-6)


def test_every_name_the_flow_uses_is_on_the_list_and_every_listed_name_is_used(trt, model, tmp_path):
    """The list checked against TensorRT 10 and 11 (engines/backends/tensorrt_version.API) is exactly what a build
    (with a timing cache), a load and a run read of TensorRT."""
    from engines.backends.tensorrt_version import API
    out = tmp_path / "e.engine"
    build(BuildOptions(onnx=model, out=out, precision="fp32", check_count=2, timing_cache=str(tmp_path / "t.cache")))
    _engine(model, out, _frames(1))
    used = set(trt.CALLED)
    listed_roots = {a.split(".")[0] for a in API}
    assert sorted(n for n in used if n not in API and n not in listed_roots) == []
    assert sorted(a for a in API if a not in used and a.split(".")[0] not in used) == []
    assert sorted(a for a in API if "." in a and a.split(".")[0][0] == "I" and a not in used) == []
    for name in API:                                # and the stand-in has each (a class member or a module name)
        obj = trt
        for part in name.split("."):
            obj = getattr(obj, part)


def test_polypwatch_run_with_the_tensorrt_backend_end_to_end(trt, model, tmp_path, clip):
    out = tmp_path / "e.engine"
    r = subprocess.run([sys.executable, "tools/build_engine", "--onnx", str(model), "--out", str(out),
                        "--precision", "fp16", "--check-frames", str(clip), "--check-count", "6"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(STANDIN)})
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "fp16" in r.stdout
    summary = tmp_path / "summary.json"
    for device_preprocess in ("false", "true"):
        r = subprocess.run([sys.executable, "-m", "stream", "run", "--source", str(clip), "--set", "capture.pace=false",
                            "--set", "engine.backend=tensorrt", "--set", f"engine.engine_file={out}",
                            "--set", f"engine.model={model}", "--set", f"engine.device_preprocess={device_preprocess}",
                            "--summary-json", str(summary)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(STANDIN)})
        assert r.returncode == 0, r.stderr
        s = json.loads(summary.read_text())
        assert s["backend"] == "tensorrt" and s["precision"] == "fp16" and s["processed"] == 120
        assert s["errors"] == 0
        assert (s["frame_graph"] is not None) == (device_preprocess == "true")     # the frame path ran on the engine


def test_the_gpu_reports_tensorrt_rows_build_engines_or_say_tensorrt_is_missing(trt, model, tmp_path, monkeypatch):
    """Where tensorrt imports, the report builds fp16 and int8 with tools/build_engine and records build time and
    parity; where it does not, it says so plainly and asks nothing more of the report."""
    from stream.lab.bench import tensorrt_rows
    monkeypatch.setenv("PYTHONPATH", str(STANDIN))
    built = tensorrt_rows.build_engines(model, tmp_path, check_count=4)
    assert built["fp16"]["passed"] and built["fp16"]["build_s"] > 0 and built["fp16"]["frames"] == 4
    assert "no Q/DQ twin" in built["int8"]["error"]                          # the tiny model has no TensorRT twin
    assert list(tensorrt_rows.scenarios(built, lambda *a: None, [])) == ["live_1080p60_tensorrt_fp16"]
    text = "\n".join(tensorrt_rows.section(trt.__version__, built))
    assert "| fp16 |" in text and "| int8 |" in text and "build failed" in text
    assert tensorrt_rows.failures(trt.__version__, built) == [f"build_engine --precision int8: {built['int8']['error']}"]
    missing = "\n".join(tensorrt_rows.section(None, {}))
    assert "TensorRT: not installed on this machine" in missing and "torch-CUDA rows" in missing
    assert tensorrt_rows.failures(None, {}) == []
    assert tensorrt_rows.tensorrt_version() == trt.__version__


def test_an_engine_without_an_execution_context_is_a_model_error(trt, model, tmp_path, monkeypatch):
    """create_execution_context() returns None when TensorRT cannot make one (device memory): said, not a crash."""
    from engines.backends.tensorrt_backend import TensorRTBackend
    out = tmp_path / "e.engine"
    build(BuildOptions(onnx=model, out=out, precision="fp32", check_count=2))
    monkeypatch.setattr(trt.ICudaEngine, "create_execution_context", lambda self: None)
    with pytest.raises(ModelError, match="could not create an execution context"):
        TensorRTBackend(out, model).open()
