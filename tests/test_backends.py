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


def test_device_preprocessing_matches_the_cpu_preprocessing(clip):
    import cv2
    import torch

    from engines.backends.device_preprocess import DevicePreprocessor
    from engines.runtime.preprocess import PreprocessSpec, preprocess
    spec = PreprocessSpec(input_height=128, input_width=128)
    cap = cv2.VideoCapture(str(clip))
    for _ in range(40):
        img = cap.read()[1]
    pre = preprocess(img, spec)
    dev = DevicePreprocessor(spec, torch.device("cpu"), torch.float32)(img, pre.area).numpy()
    diff = np.abs(dev - pre.tensor)
    assert diff.mean() < 0.03 and np.percentile(diff, 99) < 0.3      # same image, different resize kernels


def test_detector_refuses_device_preprocessing_without_torch_backend(tiny_model):
    from engines.errors import ConfigError
    from engines.runtime.detector import Detector
    from stream.config import load_config
    cfg = load_config(None, [f"engine.model={tiny_model}", "engine.backend=onnxruntime", "engine.device_preprocess=true"])
    with pytest.raises(ConfigError, match=r"engine.device_preprocess: expected false with backend 'onnxruntime'"):
        Detector(cfg.engine, cfg.preprocess)


def test_torch_backend_with_device_preprocessing_runs_the_pipeline(clip, tiny_model):
    from stream.config import load_config
    from stream.pipeline import Pipeline
    cfg = load_config(None, [f"engine.model={tiny_model}", "engine.backend=torch", "engine.device=cpu",
                             "engine.device_preprocess=true", "capture.pace=false", "pipeline.max_frames=10",
                             "publisher.endpoint=tcp://127.0.0.1:*"])
    s = Pipeline(cfg, source=str(clip)).run()
    assert s["processed"] == 10 and s["errors"] == 0 and s["backend"] == "torch"
