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
    from engines.synthetic.clip import write_clip
    from engines.synthetic.params import SynthParams
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_clip(SynthParams(seed=3, seconds=4, width=320, height=240, fps=30), out)
    return out


@pytest.fixture(scope="session")
def polyp_clip(tmp_path_factory) -> Path:
    """6 s at 480x360, 25 fps: the shipped model raises its alert on a polyp from about 1.6 s to 5 s."""
    from engines.synthetic.clip import write_clip
    from engines.synthetic.params import SynthParams
    out = tmp_path_factory.mktemp("polypclip") / "clip.mp4"
    write_clip(SynthParams(seed=1, seconds=6, width=480, height=360, fps=25), out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A small PolypNet (random weights, 64x64 input) exported to ONNX with real metadata."""
    import torch

    from engines.model import PolypNet
    from engines.runtime.metadata import ModelMetadata
    from engines.runtime.preprocess import PreprocessSpec
    from engines.compile.export import export_onnx, write_torch_checkpoint
    torch.manual_seed(0)
    net = PolypNet(pretrained=False).eval()
    meta = ModelMetadata(model_id="tiny-test", preprocess=PreprocessSpec(input_height=64, input_width=64),
                         threshold=0.5)
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export_onnx(net, meta, path)
    write_torch_checkpoint(net, meta, path.with_suffix(".pt"))
    return path


@pytest.fixture(scope="session")
def tiny_site_model(tmp_path_factory):
    """A small PolypNet with its commissioning kit (evidence: trunk features of generated frames with and without a
    polyp), exported like a shipped model."""
    import torch

    from engines.compile.export import export_onnx, write_torch_checkpoint
    from engines.lab.site.commission import trunk
    from engines.lab.site.kit import SiteKit, kit_path, save_kit
    from engines.model import PolypNet
    from engines.runtime.metadata import ModelMetadata
    from engines.runtime.preprocess import PreprocessSpec, preprocess
    from engines.synthetic import SceneRenderer, SynthParams
    torch.manual_seed(0)
    net = PolypNet(pretrained=False).eval()
    with torch.no_grad():
        net.cls.bias.fill_(-3.0)                         # a quiet stock model: its scores sit well under 0.5
    meta = ModelMetadata(model_id="tiny-site", preprocess=PreprocessSpec(input_height=64, input_width=64), threshold=0.5)
    path = tmp_path_factory.mktemp("tinysite") / "tiny.onnx"
    export_onnx(net, meta, path)
    write_torch_checkpoint(net, meta, path.with_suffix(".pt"))
    r = SceneRenderer(SynthParams(seed=3, seconds=20, width=160, height=120, fps=25))
    frames = [r.render(i) for i in range(0, r.params.frame_count, 5)]
    pos = np.stack([preprocess(f.image, meta.preprocess).tensor[0] for f in frames if f.polyps][:24])
    neg = np.stack([preprocess(f.image, meta.preprocess).tensor[0] for f in frames if not f.polyps][:16])
    fp, fn = trunk(net, pos), trunk(net, neg)
    save_kit(SiteKit("tiny-site", fp[:16], fn, fp[16:], {"bins": [], "sources": {}}), kit_path(path))
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


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A tiny copy of the ../shared/data layout made of generated frames: kvasir-seg (+ official split lists),
    kvasir-normal, cvc-colondb (+ its README sequence table), polypgen-ab centres A and B, bkai-igh."""
    import cv2

    from engines.synthetic import SceneRenderer, SynthParams
    root = tmp_path_factory.mktemp("shared-data")
    r = SceneRenderer(SynthParams(seed=21, seconds=120, width=240, height=180, fps=25))
    pos, neg = [], []
    for i in range(0, 3000, 7):
        f = r.render(i)
        big = [q for q in f.polyps if q.area_px > 150]
        if big and len(pos) < 40:
            m = np.zeros(f.image.shape[:2], np.uint8)
            for q in f.polyps:
                m |= f.masks[q.polyp_id]
            pos.append((f.image, m))
        elif not f.polyps and len(neg) < 40:
            neg.append(f.image)
    assert len(pos) >= 38 and len(neg) >= 34, (len(pos), len(neg))

    def write(folder: Path, name: str, img, mask=None):
        (folder / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / "images" / name), img)
        if mask is not None:
            (folder / "masks").mkdir(exist_ok=True)
            cv2.imwrite(str(folder / "masks" / (Path(name).stem + ".png")), mask * 255)

    seg = root / "kvasir-seg"
    for k in range(10):
        write(seg, f"k{k}.jpg", *pos[k])
    (seg / "splits_official").mkdir()
    (seg / "splits_official" / "train.txt").write_text("\n".join(f"k{k}" for k in range(8)) + "\n")
    (seg / "splits_official" / "val.txt").write_text("k8\nk9\n")
    for k in range(10):
        write(root / "kvasir-normal", f"n{k}.jpg", neg[k])
    cvc = root / "cvc-colondb"
    for k in range(12):
        write(cvc, f"{k + 1}.jpg", *pos[10 + k])
    (cvc / "README_CVC-ColonDB.txt").write_text("|  1 to 4 | 1 |\n|  5 to 8 | 3 |\n|  9 to 12 | 6 |\n")
    for k in range(6):                               # bkai-igh: masked polyp frames only, no sequences
        write(root / "bkai-igh", f"b{k:02x}.jpg", *pos[32 + k])
    for c, centre in enumerate("AB"):
        base = root / "polypgen-ab" / f"centre_{centre}"
        (base / "positive").mkdir(parents=True)
        for k in range(5):
            cv2.imwrite(str(base / "positive" / f"img{k + 1}.jpg"), pos[22 + 5 * c + k][0])
        for s in range(3):
            seq = base / "negative" / f"seq{s + 1 + 3 * c}_neg"
            seq.mkdir(parents=True)
            for k in range(4):
                cv2.imwrite(str(seq / f"seq{s + 1}_img{k}.jpg"), neg[10 + 12 * c + 4 * s + k])
    return root


TINY_RECIPE = {"data": "protocol", "batch_size": 8, "input_size": 64, "pretrained": False, "samples_per_epoch": 16,
               "epochs": 1}


@pytest.fixture
def tiny_recipe(tmp_path) -> Path:
    """A protocol recipe small enough for a test: 64x64 input, random weights, one epoch of 16 frames."""
    import yaml
    path = tmp_path / "tiny-recipe.yaml"
    path.write_text(yaml.safe_dump(TINY_RECIPE))
    return path
