import numpy as np
import pytest

from engines.backends import create_backend, resolve_backend_name
from engines.backends.onnxruntime_backend import OnnxRuntimeBackend
from engines.backends.protocol import Backend
from engines.errors import BackendError, ModelError


def test_onnxruntime_backend_follows_the_protocol(tiny_model):
    with OnnxRuntimeBackend(tiny_model, threads=1) as be:
        assert isinstance(be, Backend)
        out = be.infer(np.zeros((2, 3, 64, 64), np.float32))
    assert out["score"].shape == (2,) and out["heatmap"].shape == (2, 1, 4, 4)
    assert ((0 <= out["score"]) & (out["score"] <= 1)).all()


def test_torch_cpu_backend_matches_onnxruntime(tiny_model):
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with OnnxRuntimeBackend(tiny_model) as a, create_backend("torch", {"model_path": tiny_model, "device": "cpu",
                                                                       "model_id": "tiny-test"}) as b:
        oa, ob = a.infer(x), b.infer(x)
    # the torch checkpoint is stored in fp16: agreement to fp16 precision
    assert np.abs(oa["score"] - ob["score"]).max() < 5e-3
    assert np.abs(oa["heatmap"] - ob["heatmap"]).max() < 5e-3


def test_torch_backend_refuses_a_checkpoint_of_another_model(tiny_model):
    with pytest.raises(ModelError, match=r"checkpoint .* is model 'tiny-test', the ONNX file is 'other'"):
        create_backend("torch", {"model_path": tiny_model, "device": "cpu", "model_id": "other"}).open()


def test_auto_without_gpu_is_onnxruntime():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    assert resolve_backend_name("auto") == "onnxruntime"


@pytest.mark.parametrize("name, kwargs, error, message", [
    ("nope", {}, BackendError, r"engine.backend: expected one of"),
    ("onnxruntime", {"model_path": "/none.onnx"}, ModelError, r"/none.onnx: file not found"),
    ("torch", {"model_path": "/none.onnx", "device": "cpu"}, ModelError, r"checkpoint /none.pt not found"),
    ("tensorrt", {"engine_path": "", "onnx_path": "m.onnx"}, BackendError, r"a TensorRT engine is needed"),
])
def test_backend_errors(name, kwargs, error, message):
    with pytest.raises(error, match=message):
        create_backend(name, kwargs).open()


def test_cuda_requested_without_gpu():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(BackendError, match=r"'cuda' was asked for but torch sees no CUDA GPU"):
        create_backend("torch", {"model_path": "/x.onnx", "device": "cuda"}).open()


@pytest.mark.gpu
def test_torch_cuda_graph_backend_matches_cpu(tiny_model):
    import torch
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with create_backend("torch", {"model_path": tiny_model, "device": "cpu"}) as c, \
            create_backend("torch", {"model_path": tiny_model, "device": "cuda"}) as g:
        assert np.abs(c.infer(x)["score"] - g.infer(x)["score"]).max() < 1e-2


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720), (720, 576), (640, 480), (352, 240), (320, 240),
                                  (176, 144), (160, 120), (96, 72)])
def test_fused_frame_preprocessing_matches_the_cpu_path(size):
    """The device path's preprocessing (matrix area-resize with the CPU path's pyramid crop box, run here on the CPU
    device) against engines.runtime.preprocess on real-looking tower frames: the same rounded pyramid, crop box and
    INTER_AREA weights, so the same input within one grey level (measured: identical but for a value in 10^4 one
    level off). Small frames (an SD tower, a crop under the 192-pixel input) take OpenCV's enlarging coefficients
    (they were nearest-pixel, 76-227 levels apart)."""
    import torch

    from engines.backends.frame_graph import FramePreprocess
    from engines.synthetic import SceneRenderer, SynthParams
    from engines.runtime.preprocess import PreprocessSpec, preprocess
    spec = PreprocessSpec(input_height=192, input_width=192)
    import cv2
    rw, rh = max(size[0], 160), max(size[1], 120)          # the renderer's smallest; smaller frames are scaled down
    r = SceneRenderer(SynthParams(seed=5, seconds=10, width=rw, height=rh, fps=25))
    from engines.backends.frame_graph import crop_on_level
    level = 1 / min(spec.std)                        # one uint8 level in normalised units
    for i in (10, 150):
        img = cv2.resize(r.render(i).image, size, interpolation=cv2.INTER_AREA) if (rw, rh) != size else r.render(i).image
        pre = preprocess(img, spec)
        k, _ = crop_on_level(pre.area, spec, size[1], size[0])
        m = FramePreprocess(spec, size[1], size[0], k, torch.device("cpu"), torch.float32)
        m.set_area(pre.area)
        assert not m.set_area(pre.area)                 # the same area again: nothing to update
        with torch.no_grad():
            out = m(torch.from_numpy(img)).numpy()
        d = np.abs(out - pre.tensor)
        # the same input, but for a rare value on a rounding edge (float matrix product vs OpenCV's fixed point)
        # (enlarged crops: OpenCV's 11-bit fixed-point coefficients put more values on a rounding edge)
        assert d.max() <= 1.01 * level, d.max()
        if size[0] >= 640:
            assert (d > 1e-4).mean() < 1e-3, (d > 1e-4).mean()


@pytest.mark.parametrize("crop", [(100, 150), (191, 191), (50, 30), (300, 120), (120, 300), (17, 17), (191, 400),
                                  (192, 192), (193, 500), (600, 700)])
def test_resize_weights_are_opencv_inter_area_for_any_crop(crop):
    """Enlarging, shrinking, and one axis of each: within one grey level of cv2.resize(INTER_AREA)."""
    import cv2

    from engines.backends.frame_graph import resize_weights
    h, w = crop
    img = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    ref = cv2.resize(img, (192, 160), interpolation=cv2.INTER_AREA).astype(np.float64)
    ry, rx = resize_weights((0, 0, w, h), h, w, 160, 192)
    out = np.floor(np.stack([ry @ img[..., c].astype(np.float64) @ rx.T for c in range(3)], -1) + 0.5)
    assert np.abs(out - ref).max() <= 1.0


def test_frame_graph_scores_match_onnxruntime_and_build_once_per_frame_size(shipped_model):
    """torch backend, device path on the CPU device: same scores as ONNX Runtime on the CPU path; a new active
    area changes buffers only, a new frame size builds again."""
    from engines.synthetic import SceneRenderer, SynthParams
    from engines.detector import Detector
    from stream.config import load_config
    base = [f"engine.model={shipped_model}", "preprocess.active_area_every=1"]
    ort_cfg = load_config(None, base + ["engine.backend=onnxruntime", "engine.precision=fp32"])
    dev_cfg = load_config(None, base + ["engine.backend=torch", "engine.device=cpu", "engine.device_preprocess=true"])
    frames = [SceneRenderer(SynthParams(seed=s, seconds=10, width=960, height=540, fps=25)).render(i).image
              for s, i in ((1, 60), (2, 200), (3, 40), (4, 120))]
    with Detector(ort_cfg.engine, ort_cfg.preprocess) as a, Detector(dev_cfg.engine, dev_cfg.preprocess) as b:
        sa = [a.detect(f).score for f in frames]
        sb = [b.detect(f).score for f in frames]
        fg = b.backend._frame_graph
        built = fg.builds
        assert 1 <= built <= 2 and len(fg.entries) == built  # four scenes, four areas: one build per pyramid level
        assert [b.detect(f).score for f in frames] == sb and fg.builds == built      # new areas: buffers only
        b.detect(np.ascontiguousarray(frames[0][:480, :800]))
        assert fg.builds == built + 1 and fg.shape == (480, 800, 3)                  # a new frame size: built
    assert np.abs(np.array(sa) - np.array(sb)).max() < 0.005, (sa, sb)       # torch vs ONNX Runtime arithmetic
    assert max(sa) > 0.7 and min(sa) < max(sa) - 0.1       # the frames differ: the comparison means something


def test_detector_refuses_device_preprocessing_without_torch_backend(tiny_model):
    from engines.errors import ConfigError
    from engines.detector import Detector
    from stream.config import load_config
    cfg = load_config(None, [f"engine.model={tiny_model}", "engine.backend=onnxruntime", "engine.device_preprocess=true"])
    with pytest.raises(ConfigError, match=r"engine.device_preprocess: expected false with backend 'onnxruntime'"):
        Detector(cfg.engine, cfg.preprocess)


def test_area_weights_average_like_inter_area():
    import cv2

    from engines.backends.frame_graph import area_weights
    row = np.random.default_rng(1).integers(0, 256, (1, 500)).astype(np.float32)
    w = area_weights(37, 437, 500, 96)                      # crop [37, 437) -> 96 pixels
    assert np.allclose(w.sum(axis=1), 1.0) and (w[:, :37] == 0).all() and (w[:, 437:] == 0).all()
    ref = cv2.resize(row[:, 37:437], (96, 1), interpolation=cv2.INTER_AREA)
    assert np.abs(row @ w.T - ref).max() < 1e-3


def test_torch_backend_with_device_preprocessing_runs_the_pipeline(clip, tiny_model):
    from stream.config import load_config
    from stream.pipeline import Pipeline
    cfg = load_config(None, [f"engine.model={tiny_model}", "engine.backend=torch", "engine.device=cpu",
                             "engine.device_preprocess=true", "capture.pace=false", "pipeline.max_frames=10",
                             "publisher.endpoint=tcp://127.0.0.1:*"])
    s = Pipeline(cfg, source=str(clip)).run()
    assert s["processed"] == 10 and s["errors"] == 0 and s["backend"] == "torch"


def test_a_lite1_model_round_trips_through_onnx_and_the_torch_backend(tmp_path):
    """The backbone is recorded in the checkpoint, so the torch backend rebuilds the right network."""
    import torch

    from engines.model import PolypNet
    from engines.runtime.metadata import ModelMetadata
    from engines.runtime.preprocess import PreprocessSpec
    from engines.compile.export import export_onnx, write_torch_checkpoint
    torch.manual_seed(1)
    net = PolypNet(pretrained=False, backbone="efficientnet-lite1").eval()
    meta = ModelMetadata(model_id="lite1-test", preprocess=PreprocessSpec(input_height=64, input_width=64))
    path = tmp_path / "lite1.onnx"
    export_onnx(net, meta, path)
    write_torch_checkpoint(net, meta, path.with_suffix(".pt"))
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with create_backend("onnxruntime", {"model_path": path}) as o, \
            create_backend("torch", {"model_path": path, "device": "cpu", "model_id": "lite1-test"}) as t:
        assert np.abs(o.infer(x)["score"] - t.infer(x)["score"]).max() < 1e-4
    assert torch.load(path.with_suffix(".pt"), weights_only=True)["backbone"] == "efficientnet-lite1"
