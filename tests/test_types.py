import numpy as np
import pytest

from stream.detection import AlertState, Box, Detection
from stream.frame import Frame


@pytest.mark.parametrize("image, message", [
    (np.zeros((10, 10, 3), np.uint8), r"at least 16x16"),
    (np.zeros((32, 32), np.uint8), r"expected HxWx3 uint8 \(BGR\), got shape \(32, 32\)"),
    (np.zeros((32, 32, 3), np.float32), r"dtype float32"),
])
def test_frame_rejects_bad_images(image, message):
    with pytest.raises(ValueError, match=message):
        Frame(seq=0, t_capture_ns=1, t_wall_ns=1, image=image, source="s")


def test_frame_is_frozen_and_index_defaults_to_seq():
    f = Frame(seq=4, t_capture_ns=1, t_wall_ns=1, image=np.zeros((32, 32, 3), np.uint8), source="s")
    assert f.index == 4
    with pytest.raises(Exception):
        f.seq = 5


@pytest.mark.parametrize("values, message", [
    ((0.5, 0.1, 0.2, 0.3, 0.9), r"expected x0<=x1"),
    ((0.1, 0.1, 1.2, 0.3, 0.9), r"Box.x1: expected 0..1, got 1.2"),
    ((0.1, 0.1, 0.2, 0.3, -0.1), r"Box.score: expected 0..1"),
])
def test_box_validation(values, message):
    with pytest.raises(ValueError, match=message):
        Box(*values)


def test_detection_empty_and_failed():
    e = Detection.empty(3, 100, "s", "m")
    assert (e.score, e.alert, e.boxes, e.latency_ns("capture")) == (0.0, AlertState.OFF, (), 0)
    f = Detection.failed(3, 100, "s", "boom")
    assert f.alert is AlertState.ERROR and f.error == "boom"
    with pytest.raises(ValueError, match=r"unknown stage 'draw'"):
        Detection(seq=1, t_capture_ns=1, source="s", score=0.1, alert=AlertState.OFF, times_ns={"draw": 2})
