import cv2
import numpy as np
import pytest

from engines.lab.data.datasets import load_dataset
from engines.errors import DatasetError
from engines.runtime.preprocess import PreprocessSpec
from engines.lab.data.arrays import from_samples


def _img(path, value=120, size=(64, 80)):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*size, 3), value, np.uint8))


def _kvasir(root, n=3):
    (root / "masks").mkdir(parents=True)
    for i in range(n):
        _img(root / "images" / f"a{i}.jpg")
        m = np.zeros((64, 80), np.uint8)
        m[10:30, 10:30] = 255
        cv2.imwrite(str(root / "masks" / f"a{i}.jpg"), m)
    (root / "bbox").mkdir()
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("a0\na1\n")
    (root / "splits" / "val.txt").write_text("a2\n")


def test_kvasir_layout_and_split(tmp_path):
    _kvasir(tmp_path)
    assert [s.image.stem for s in load_dataset(tmp_path, split="train")] == ["a0", "a1"]
    val = load_dataset(tmp_path, split="val")
    assert [s.image.stem for s in val] == ["a2"] and val[0].label == 1 and val[0].mask.stem == "a2"


def test_masks_layout_with_cvc_sequence_table(tmp_path):
    (tmp_path / "masks").mkdir()
    for i in (1, 2, 3):
        _img(tmp_path / "images" / f"{i}.jpg")
        m = np.zeros((64, 80), np.uint8)
        if i != 2:
            m[5:20, 5:20] = 255
        cv2.imwrite(str(tmp_path / "masks" / f"{i}.png"), m)
    (tmp_path / "README_CVC.txt").write_text("|  1 to  2  |  1 |\n|  3 to 3 | 7 |\n")
    samples = load_dataset(tmp_path)
    assert [s.group for s in samples] == ["1", "1", "7"]
    arr = from_samples(samples, PreprocessSpec(input_height=32, input_width=32))
    assert arr.labels.tolist() == [1, 0, 1]           # positive when the mask is non-empty


def test_imagefolder_binary(tmp_path):
    _img(tmp_path / "polyps" / "p.jpg")
    _img(tmp_path / "normal-cecum" / "n.jpg")
    assert sorted((s.group, s.label) for s in load_dataset(tmp_path)) == [("normal-cecum", 0), ("polyps", 1)]


@pytest.mark.parametrize("setup, message", [
    (lambda r: None, r"dataset folder not found"),
    (lambda r: r.mkdir(), r"cannot tell the dataset layout"),
    (lambda r: (_img(r / "images" / "a.jpg"), (r / "masks").mkdir()), r"masks: no images"),
    (lambda r: (_img(r / "images" / "a.jpg"), _img(r / "images" / "b.jpg"), _img(r / "masks" / "a.png")),
     r"no mask for 1 image\(s\), e.g. \['b.jpg'\]"),
    (lambda r: (_img(r / "x" / "a.jpg"), _img(r / "y" / "b.jpg")), r"imagefolder needs a positive class"),
])
def test_bad_layouts(tmp_path, setup, message):
    root = tmp_path / "ds"
    setup(root)
    with pytest.raises(DatasetError, match=message):
        load_dataset(root)


def test_unreadable_image_is_named(tmp_path):
    root = tmp_path / "neg"
    root.mkdir()
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=r"broken.jpg: unreadable image"):
        from_samples(load_dataset(root, layout="negatives"), PreprocessSpec())


def test_missing_split_list(tmp_path):
    _kvasir(tmp_path)
    with pytest.raises(DatasetError, match=r"no split list test.txt"):
        load_dataset(tmp_path, split="test")
