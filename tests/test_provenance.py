"""A training run's record: the numeric environment and a fingerprint of the exact input arrays."""
import numpy as np

from engines.lab.training.provenance import array_fingerprint, environment


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    masks = (rng.random((4, 8, 8)) > 0.5).astype(np.float32)
    return images, masks, np.array([1, 0, 1, 0], np.int64)


def test_fingerprint_is_repeatable_and_changes_with_any_input():
    images, masks, labels = _arrays()
    fp = array_fingerprint(images, masks, labels)
    assert fp == array_fingerprint(images.copy(), masks.copy(), labels.copy()) and len(fp) == 16
    assert fp == array_fingerprint(images, np.round(masks * 255).astype(np.uint8), labels)   # masks as cached
    img2 = images.copy()
    img2[2, 3, 4, 1] ^= 1                                              # one bit of one pixel
    assert array_fingerprint(img2, masks, labels) != fp
    m2 = masks.copy()
    m2[0, 0, 0] = 1 - m2[0, 0, 0]
    assert array_fingerprint(images, m2, labels) != fp
    assert array_fingerprint(images, masks, labels[::-1].copy()) != fp
    assert array_fingerprint(images[:3], masks[:3], labels[:3]) != fp


def test_environment_names_the_numeric_path():
    import torch
    env = environment()
    assert env["torch"] == torch.__version__ and env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["torch_threads"] >= 1 and env["cpu"] and env["machine"]
    import cv2
    assert env["opencv"] == cv2.__version__ and env["opencv_optimized"] == cv2.useOptimized()
    assert isinstance(env["avx512"], bool)
    if env["avx512"]:                                                  # torch may choose AVX-512 kernels only there
        assert env["cpu_family_model"]
    else:
        assert env["cpu_capability"] != "AVX512"
