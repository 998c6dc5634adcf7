"""Shared fixtures: generated clips (real video files through OpenCV), a tiny real ONNX model, free ports."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """A 4-second 320x240 30 fps synthetic clip with its truth (clip.json)."""
    from engines.data.synthetic.clip import write_clip
    from engines.data.synthetic.params import SynthParams
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_clip(SynthParams(seed=3, seconds=4, width=320, height=240, fps=30), out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A small PolypNet (random weights, 64x64 input) exported to ONNX with real metadata."""
    import torch

    from engines.model import PolypNet
    from engines.runtime.metadata import ModelMetadata
    from engines.runtime.preprocess import PreprocessSpec
    from engines.training.export import export_onnx, write_torch_checkpoint
    torch.manual_seed(0)
    net = PolypNet(pretrained=False).eval()
    meta = ModelMetadata(model_id="tiny-test", preprocess=PreprocessSpec(input_height=64, input_width=64),
                         threshold=0.5)
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_onnx(net, meta, path)
    write_torch_checkpoint(net, meta, path.with_suffix(".pt"))
    return path


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    from engines.runtime.model_files import DEFAULT_MODEL
    if not DEFAULT_MODEL.is_file():
        pytest.fail(f"the shipped model {DEFAULT_MODEL} is missing")
    return DEFAULT_MODEL


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def frame_image(h: int = 120, w: int = 160, value: int = 100) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)
