"""tools/build_engine and the TensorRT backend: everything testable without TensorRT, plus GPU-marked tests."""
import importlib.util
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from conftest import ROOT

from engines.backends.engine_sidecar import (
    EngineMismatch,
    GpuInfo,
    Sidecar,
    check_compatible,
    read_sidecar,
    sha256_file,
    sidecar_path,
)
from engines.backends.gpu import NoGpuError, gpu_info
from engines.compile.calibration import calibration_batches
from engines.compile.engine import BuildError, BuildOptions, build, compare
from engines.errors import BackendError, ModelError

H100 = GpuInfo("NVIDIA H100 80GB HBM3", "9.0")


def _sidecar(**kw):
    base = dict(onnx_sha256="a" * 64, onnx_name="m.onnx", tensorrt_version="10.3.0", gpu=H100, precision="fp16",
                input_name="image", input_shapes={"min": [1, 3, 256, 256], "opt": [1, 3, 256, 256],
                                                  "max": [4, 3, 256, 256]}, workspace_mb=1024)
    base.update(kw)
    return Sidecar(**base)


def test_sidecar_round_trip_and_tamper_check(tmp_path):
    s = _sidecar(check={"max_abs_score_diff": 0.001})
    p = tmp_path / "e.engine.json"
    s.write(p)
    assert read_sidecar(p) == s
    d = json.loads(p.read_text())
    d["precision"] = "fp32"
    p.write_text(json.dumps(d))
    with pytest.raises(ModelError, match="cache key does not match its fields"):
        read_sidecar(p)


@pytest.mark.parametrize("field, value", [
    ("onnx_sha256", "b" * 64), ("tensorrt_version", "10.4.0"), ("gpu", GpuInfo("NVIDIA L4", "8.9")),
    ("precision", "int8"), ("input_shapes", {"min": [1, 3, 224, 224]}), ("workspace_mb", 2048),
    ("calibration_sha256", "c" * 64),
])
def test_cache_key_covers_every_input_of_the_build(field, value):
    assert _sidecar().cache_key() != _sidecar(**{field: value}).cache_key()


def test_cache_key_ignores_what_does_not_change_the_engine():
    assert _sidecar().cache_key() == _sidecar(build_time="2026-01-01", check={"x": 1}).cache_key()


@pytest.mark.parametrize("gpu, version, sha, message", [
    (GpuInfo("NVIDIA L4", "8.9"), "10.3.0", "a" * 64, r"built for NVIDIA H100 80GB HBM3 \(compute capability 9.0\), "
                                                       r"this GPU is NVIDIA L4 \(8.9\); rebuild it here: tools/build_engine"),
    (H100, "10.4.0", "a" * 64, r"built with TensorRT 10.3.0, this is TensorRT 10.4.0; rebuild"),
    (H100, "10.3.0", "b" * 64, r"built from another model .*; rebuild it here"),
])
def test_engine_for_another_gpu_version_or_model_is_refused(gpu, version, sha, message):
    with pytest.raises(EngineMismatch, match=message):
        check_compatible(_sidecar(), gpu, version, sha, "e.engine")
    check_compatible(_sidecar(), H100, "10.3.0", "a" * 64)      # the matching one passes


def test_missing_or_foreign_sidecar(tmp_path):
    with pytest.raises(ModelError, match="not found \\(rebuild the engine with tools/build_engine\\)"):
        read_sidecar(tmp_path / "none.json")
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(ModelError, match="expected format 'polypwatch-tensorrt-engine'"):
        read_sidecar(tmp_path / "x.json")


def test_calibration_batches_use_the_shared_preprocessing(tmp_path, clip):
    import cv2

    from engines.runtime.preprocess import PreprocessSpec, preprocess
    spec = PreprocessSpec(input_height=64, input_width=64)
    batches = list(calibration_batches(clip, spec, count=10, batch=4))
    assert [b.shape for b in batches] == [(4, 3, 64, 64), (4, 3, 64, 64), (2, 3, 64, 64)]
    cap = cv2.VideoCapture(str(clip))
    first = cap.read()[1]
    assert np.allclose(batches[0][0], preprocess(first, spec).tensor[0])
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), first)
    assert sum(len(b) for b in calibration_batches(tmp_path, spec, count=5, batch=2)) == 3


def test_parity_comparison():
    ref = np.array([0.1, 0.6, 0.9])
    ok = compare(ref, ref + 0.01, 0.5, 0.02)
    assert ok["passed"] and ok["alert_decision_agreement"] == 1.0
    bad = compare(ref, np.array([0.1, 0.4, 0.9]), 0.5, 0.02)
    assert not bad["passed"] and bad["alert_decision_agreement"] == pytest.approx(0.6667, abs=1e-3)


@pytest.mark.parametrize("kw, message", [
    (dict(precision="int4"), r"--precision: expected one of"),
    (dict(batch=(2, 1, 4)), r"--batch: expected 1 <= min <= opt <= max"),
    (dict(check_count=0), r"--check-count: expected at least 1"),
])
def test_bad_options(tmp_path, kw, message):
    with pytest.raises(BuildError, match=message):
        BuildOptions(onnx=tmp_path / "m.onnx", out=tmp_path / "e", **kw)


def test_unwritable_output_and_missing_model(tmp_path, tiny_model):
    with pytest.raises(BuildError, match=r"folder .*nope does not exist"):
        build(BuildOptions(onnx=tiny_model, out=tmp_path / "nope" / "e.engine"))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(BuildError, match="is not writable"):
            build(BuildOptions(onnx=tiny_model, out=ro / "e.engine"))
    finally:
        ro.chmod(0o700)
    with pytest.raises(BuildError, match="file not found"):
        build(BuildOptions(onnx=tmp_path / "none.onnx", out=tmp_path / "e.engine"))


def test_tool_fails_at_once_without_tensorrt_or_gpu(tmp_path, tiny_model):
    r = subprocess.run([sys.executable, "tools/build_engine", "--onnx", str(tiny_model), "--out",
                        str(tmp_path / "e.engine")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    try:
        import tensorrt  # noqa: F401
        has_trt = True
    except ImportError:
        has_trt = False
    if has_trt and _cuda():
        pytest.skip("TensorRT and a GPU are present")
    assert r.returncode == 1
    assert ("TensorRT is not installed" in r.stderr) or ("no NVIDIA GPU" in r.stderr)
    assert not (tmp_path / "e.engine").exists()


def _cuda():
    import torch
    return torch.cuda.is_available()


def test_no_gpu_is_reported_before_any_tensorrt_object(monkeypatch):
    """Real TensorRT (no HOST_DEVICE) on a machine without a GPU: the backend says so before it makes any TensorRT
    object (the lean runtime crashes without one); without TensorRT it says that."""
    if _cuda():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(NoGpuError, match="no NVIDIA GPU: CUDA reports no device"):
        gpu_info()
    from engines.backends.tensorrt_backend import TensorRTBackend
    with pytest.raises(BackendError, match="a TensorRT engine is needed"):
        TensorRTBackend("", "m.onnx")
    if importlib.util.find_spec("tensorrt") is None:
        with pytest.raises(BackendError, match="TensorRT backend: TensorRT is not installed"):
            TensorRTBackend("e.engine", "m.onnx").open()
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "standin"))
    sys.modules.pop("tensorrt", None)
    try:
        import tensorrt
        monkeypatch.delattr(tensorrt, "HOST_DEVICE")          # shaped like the real package
        tensorrt.CALLED.clear()
        with pytest.raises(BackendError, match="TensorRT backend: no NVIDIA GPU"):
            TensorRTBackend("e.engine", "m.onnx").open()
        assert not {"Logger", "Runtime", "Builder"} & tensorrt.CALLED
    finally:
        sys.modules.pop("tensorrt", None)


# A minimal module for the two error paths that need TensorRT to return a failure (parser errors, an empty build);
# the whole flow runs on the faithful stand-in (tests/standin/tensorrt, tests/test_tensorrt_flow.py).
class _Parser:
    def __init__(self, network, logger):
        self.num_errors = 2

    def parse(self, data):
        return False

    def get_error(self, i):
        return ["In node 12 (Conv): unsupported attribute", "In node 40 (Resize): bad scales"][i]


def _fake_trt(build_result=None, version="11.4.0.106", seen=None):
    """Shaped like TensorRT 11: no BuilderFlag.FP16/INT8, no calibrators (a build that used them would fail)."""
    seen = {} if seen is None else seen

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            seen["network_flags"] = flags
            return object()

        def create_builder_config(self):
            return types.SimpleNamespace(set_memory_pool_limit=lambda *a: None, add_optimization_profile=lambda p: None)

        def create_optimization_profile(self):
            return types.SimpleNamespace(set_shape=lambda *a: None)

        def build_serialized_network(self, network, config):
            return build_result

    return types.SimpleNamespace(Logger=types.SimpleNamespace(WARNING=2, __call__=None), Builder=Builder,
                                 MemoryPoolType=types.SimpleNamespace(WORKSPACE=0),
                                 NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=5),
                                 Runtime=object, OnnxParser=_Parser, TensorIOMode=types.SimpleNamespace(INPUT=1),
                                 __version__=version)


def test_every_parser_error_is_listed(tmp_path, tiny_model):
    trt = _fake_trt()
    trt.Logger = lambda level: None
    trt.Logger.WARNING = 2
    trt.OnnxParser = _Parser
    with pytest.raises(BuildError, match=r"ONNX parser: 2 error\(s\) in .*\n  In node 12 \(Conv\).*\n  In node 40"):
        build(BuildOptions(onnx=tiny_model, out=tmp_path / "e.engine", precision="fp32", check_count=2), trt=trt,
              gpu=H100)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_empty_build_is_an_error_and_the_network_is_strongly_typed(tmp_path, tiny_model, precision):
    """On a TensorRT 11-shaped module (no precision flags): the network is created strongly typed from the ONNX of
    its precision (fp16: converted on the CPU first); an empty build is an error and leaves nothing behind."""
    seen, parsed = {}, []
    trt = _fake_trt(build_result=None, seen=seen)
    trt.Logger = lambda level: None
    trt.Logger.WARNING = 2
    trt.OnnxParser = lambda network, logger: types.SimpleNamespace(parse=lambda data: parsed.append(data) or True,
                                                                   num_errors=0)
    with pytest.raises(BuildError, match=r"TensorRT returned no engine"):
        build(BuildOptions(onnx=tiny_model, out=tmp_path / "e.engine", precision=precision, check_count=2), trt=trt,
              gpu=H100)
    assert seen["network_flags"] == 1 << 5
    assert (parsed[0] == tiny_model.read_bytes()) == (precision == "fp32")
    assert not (tmp_path / "e.engine").exists() and not sidecar_path(tmp_path / "e.engine").exists()


@pytest.mark.parametrize("version, ok", [("10.0.1", True), ("10.13.0.35", True), ("11.4.0.106", True),
                                         ("9.2.0", False), ("12.0.0", False), ("8.6.1", False)])
def test_the_supported_tensorrt_range_is_checked_at_start(version, ok, tmp_path, tiny_model):
    from engines.backends.tensorrt_version import TensorRTVersionError, check_version
    if ok:
        check_version(version)
    else:
        with pytest.raises(TensorRTVersionError, match=f"TensorRT {version} is outside the supported range"):
            check_version(version)


def test_the_range_is_the_one_pyproject_declares():
    import tomllib

    from engines.backends.tensorrt_version import SUPPORTED
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["tensorrt"] == [f"tensorrt{SUPPORTED}"]
    r = subprocess.run([sys.executable, "tools/build_engine", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert f"TensorRT {SUPPORTED}" in " ".join(r.stdout.split())


def _resolve(module, dotted: str):
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def test_every_tensorrt_name_the_build_uses_exists_in_the_real_package():
    """Against the real tensorrt package where it imports (skipped on machines without it)."""
    trt = pytest.importorskip("tensorrt")
    from engines.backends.tensorrt_version import API, check_version
    check_version(trt.__version__)
    for name in API:
        _resolve(trt, name)


# ------------------------------------------------------------------------- the ONNX of each precision (CPU)
def _frames(n=4):
    return np.random.default_rng(0).standard_normal((n, 3, 64, 64)).astype(np.float32)


def test_fp16_onnx_is_converted_on_the_cpu_and_checked_against_fp32(tmp_path, tiny_model):
    from engines.compile.network_onnx import NetworkError, convert_fp16, scores
    from engines.runtime.metadata import read_onnx_metadata
    out = tmp_path / "m.fp16.onnx"
    check = convert_fp16(tiny_model, out, _frames(), 2e-2)
    assert check["passed"] and check["max_abs_score_diff"] < 2e-2
    assert read_onnx_metadata(out).model_id == "tiny-test"           # the metadata travels
    import onnx
    types_ = {i.data_type for i in onnx.load(str(out)).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types_
    assert scores(out, _frames()).shape == (4,)
    with pytest.raises(NetworkError, match="differs from fp32 by .* > tolerance 1e-12"):
        convert_fp16(tiny_model, out, _frames(), 1e-12)
    assert not out.exists()


@pytest.fixture(scope="module")
def twins(tiny_model, clip, tmp_path_factory):
    """The ONNX Runtime twin (uint8 activations) and the TensorRT twin (symmetric int8) of the tiny model."""
    from engines.compile.calibration import CalibrationSet
    from engines.compile.quantize import QuantizeOptions, quantize_model
    d = tmp_path_factory.mktemp("twins")
    cal = CalibrationSet(str(clip), path=str(clip))
    ort_twin, trt_twin = d / "tiny.int8.onnx", d / "tiny.int8-trt.onnx"
    quantize_model(QuantizeOptions(onnx=tiny_model, calibration=cal, out=ort_twin, count=8))
    quantize_model(QuantizeOptions(onnx=tiny_model, calibration=cal, out=trt_twin, count=8, target="tensorrt"))
    return ort_twin, trt_twin


def test_int8_builds_only_from_a_symmetric_twin_of_this_model(twins, tiny_model, tmp_path):
    from engines.compile.network_onnx import NetworkError, check_qdq_twin, network_onnx, tensorrt_twin
    ort_twin, trt_twin = twins
    check_qdq_twin(trt_twin, tiny_model)                         # zero points all int8 0
    with pytest.raises(NetworkError, match=r"Q/DQ node\(s\) TensorRT cannot run .*zero point uint8 \[\d+\], not int8 0; "
                                           r"TensorRT runs only symmetric int8 Q/DQ.*--for tensorrt"):
        check_qdq_twin(ort_twin, tiny_model)
    other = tmp_path / "other.onnx"
    other.write_bytes(tiny_model.read_bytes() + b"\0")
    with pytest.raises(NetworkError, match="not the quantised twin of other.onnx"):
        check_qdq_twin(trt_twin, other)
    with pytest.raises(NetworkError, match=r"no Q/DQ twin at .*tools/quantize --for tensorrt"):
        network_onnx("int8", tiny_model, tmp_path / "e.engine", _frames(), 0.08)
    assert tensorrt_twin(tiny_model).name == "tiny.int8-trt.onnx"
    src, checks = network_onnx("int8", tiny_model, tmp_path / "e.engine", _frames(), 0.08, qdq=trt_twin)
    assert src == trt_twin and checks["qdq_sha256"] == sha256_file(trt_twin)


def _qdq_graph(zp=("init", np.int8, 0), weight_min=-127, axis=0, scales=4):
    """Conv(DQ(Q(x)), DQ(w)): one activation Q/DQ pair and one per-channel weight DQ, with the given zero point
    (("init" | "constant" | "computed" | "absent"), dtype, value)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    kind, dtype, value = zp
    w = np.clip(np.arange(4 * 3 * 3 * 3).reshape(4, 3, 3, 3) - 50, -127, 127).astype(np.int8)
    w.flat[0] = weight_min
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.full(scales, 0.1, np.float32), "w_scale"),
             numpy_helper.from_array(np.zeros(scales, np.int8), "w_zp"),
             numpy_helper.from_array(np.array(0.05, np.float32), "x_scale")]
    nodes, zp_in = [], ["x_zp"]
    if kind == "init":
        inits.append(numpy_helper.from_array(np.array(value, dtype), "x_zp"))
    elif kind == "constant":
        nodes.append(helper.make_node("Constant", [], ["x_zp"], value=numpy_helper.from_array(np.array(value, dtype))))
    elif kind == "computed":
        inits.append(numpy_helper.from_array(np.array(0, np.int8), "zp0"))
        nodes.append(helper.make_node("Identity", ["zp0"], ["x_zp"]))
    else:
        zp_in = []
    nodes += [helper.make_node("QuantizeLinear", ["x", "x_scale", *zp_in], ["xq"], name="q_x"),
              helper.make_node("DequantizeLinear", ["xq", "x_scale", *zp_in], ["xd"], name="dq_x"),
              helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zp"], ["wd"], name="dq_w", axis=axis),
              helper.make_node("Conv", ["xd", "wd"], ["y"], name="conv")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])


@pytest.mark.parametrize("kw, problem", [
    (dict(), None),
    (dict(zp=("constant", np.int8, 0)), None),                                        # a Constant node's zero point
    (dict(zp=("absent", None, None)), r"q_x: no zero point \(ONNX's default is uint8\)"),
    (dict(zp=("constant", np.int8, 3)), r"q_x: zero point int8 \[3\], not int8 0"),
    (dict(zp=("constant", np.uint8, 0)), r"q_x: zero point uint8 \[0\], not int8 0"),
    (dict(zp=("computed", None, None)), r"q_x: zero point 'x_zp' is computed, not a constant"),
    (dict(weight_min=-128), r"dq_w: weight 'w' holds -128"),
    (dict(axis=1, scales=3), r"dq_w: per-channel scales along axis 1 \(size 3\) .*per output channel \(axis 0\)"),
])
def test_the_twin_check_sees_every_zero_point_and_the_weights_range_and_axis(kw, problem):
    from engines.compile.network_onnx import qdq_problems
    found = qdq_problems(_qdq_graph(**kw))
    if problem is None:
        assert found == []
    else:
        assert found and __import__("re").search(problem, found[0]), found


# ---------------------------------------------------------------------- what the runtime refuses (no GPU needed)
def test_an_engine_that_failed_its_check_is_refused_with_its_figures():
    from engines.backends.engine_sidecar import check_passed
    failed = _sidecar(check={"passed": False, "max_abs_score_diff": 0.31, "tolerance": 0.02, "frames": 32,
                             "alert_decision_agreement": 0.81})
    with pytest.raises(EngineMismatch, match=r"failed its check when it was built: max \|score difference\| vs ONNX "
                                             r"Runtime 0.31 > tolerance 0.02 on 32 frames"):
        check_passed(failed, "e.engine")
    with pytest.raises(EngineMismatch, match="records no check"):
        check_passed(_sidecar(), "e.engine")
    check_passed(_sidecar(check={"passed": True}), "e.engine")


def test_the_batch_is_checked_against_the_engine_profile():
    from engines.backends.engine_sidecar import check_batch
    with pytest.raises(EngineMismatch, match=r"engine.batch_size 8: engine e.engine takes batches of 1 to 4"):
        check_batch(_sidecar(), 8, "e.engine")
    check_batch(_sidecar(), 4, "e.engine")


def test_set_input_shape_refusals_and_batches_outside_the_profile_are_errors():
    from engines.backends.tensorrt_backend import TensorRTBackend
    be = TensorRTBackend("e.engine", "m.onnx")
    be._inputs, be._batches = ["image"], (1, 4)
    be._context = types.SimpleNamespace(set_input_shape=lambda name, shape: shape[0] != 3)
    be._set_shape((2, 3, 64, 64))
    with pytest.raises(BackendError, match=r"a batch of 5 frames; engine e.engine takes 1 to 4"):
        be._set_shape((5, 3, 64, 64))
    with pytest.raises(BackendError, match=r"the engine refused input shape \(3, 3, 64, 64\)"):
        be._set_shape((3, 3, 64, 64))


def test_cuda_graph_capture_falls_back_to_plain_enqueue():
    """An engine that refuses to be captured (operations not allowed under capture): the frame path runs without a
    graph, gives the same outputs, and says so (the run summary's frame_graph)."""
    import torch

    from engines.backends.frame_graph import FrameGraph
    from engines.runtime.preprocess import PreprocessSpec, find_active_area
    spec = PreprocessSpec(input_height=32, input_width=32)
    state = {"capturing": False}

    def engine(x):
        if state["capturing"]:
            raise RuntimeError("operation not permitted when stream is capturing")
        return (x.mean(dim=(1, 2, 3)),)

    def refusing_capture(pre):
        state["capturing"] = True
        try:
            return {"graph": engine(pre(torch.zeros(120, 160, 3, dtype=torch.uint8)))}
        finally:
            state["capturing"] = False

    fg = FrameGraph(engine, spec, torch.device("cpu"), torch.float32, ("score",), use_graph=True)
    fg.use_graph = True                              # as on CUDA
    fg._capture = refusing_capture
    img = np.full((120, 160, 3), 120, np.uint8)
    out = fg.run(img, find_active_area(img, spec))
    assert fg.graph_status == {"cuda_graph": False, "fallback": "RuntimeError: operation not permitted when stream is "
                                                                "capturing"}
    assert out["score"].shape == (1,) and np.isfinite(out["score"]).all()
    assert all(e["graph"] is None for e in fg.entries.values())


def _trt_and_gpu() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return _cuda()


@pytest.mark.tensorrt
@pytest.mark.skipif(not _trt_and_gpu(), reason="needs TensorRT and an NVIDIA GPU")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_real_engine_builds_matches_onnxruntime_and_is_refused_for_another_model(tmp_path, shipped_model, precision):
    s = build(BuildOptions(onnx=shipped_model, out=tmp_path / "e.engine", precision=precision, check_count=8))
    assert s.check["passed"] and s.check["alert_decision_agreement"] >= 0.95
    from engines.backends.tensorrt_backend import TensorRTBackend
    with pytest.raises(EngineMismatch, match="built from another model"):
        other = tmp_path / "other.onnx"
        other.write_bytes(shipped_model.read_bytes() + b"\0")
        TensorRTBackend(tmp_path / "e.engine", other).open()
    assert sha256_file(shipped_model) == read_sidecar(sidecar_path(tmp_path / "e.engine")).onnx_sha256


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU: the real torch.cuda.graph context manager")
def test_a_failed_capture_inside_the_real_graph_context_leaves_torchs_stream_as_it_was():
    """An engine that synchronises (not allowed under capture) fails inside torch.cuda.graph, whose __exit__ then
    raises before it leaves the capture stream; the frame path must restore the stream and run eagerly after."""
    import torch

    from engines.backends.frame_graph import FrameGraph
    from engines.runtime.preprocess import PreprocessSpec, find_active_area
    spec = PreprocessSpec(input_height=32, input_width=32)

    def engine(x):
        torch.cuda.synchronize()              # illegal while capturing: invalidates the capture
        return (x.mean(dim=(1, 2, 3)),)

    before = torch.cuda.current_stream()
    fg = FrameGraph(engine, spec, torch.device("cuda"), torch.float32, ("score",), use_graph=True)
    img = np.full((120, 160, 3), 120, np.uint8)
    out = fg.run(img, find_active_area(img, spec))
    assert fg.graph_status["cuda_graph"] is False and fg.graph_status["fallback"]
    assert torch.cuda.current_stream() == before
    assert out["score"].shape == (1,) and np.isfinite(out["score"]).all()
