import numpy as np
import pytest

from engines.synthetic import SceneRenderer, SynthParams
from engines.runtime.preprocess import (
    ActiveArea,
    PreprocessSpec,
    crop_mask,
    crop_to_input,
    find_active_area,
    input_to_frame_box,
    normalise,
    preprocess,
)


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (320, 240)])
def test_active_area_found_inside_the_black_border(size):
    r = SceneRenderer(SynthParams(seed=2, seconds=2, width=size[0], height=size[1], fps=25))
    img = r.render(10).image
    a = find_active_area(img, PreprocessSpec())
    tol = 0.03 * size[0]
    assert abs(a.x0 - r.ax0) < tol and abs(a.x1 - (r.ax0 + r.side)) < tol
    assert abs(a.y0 - r.ay0) < tol and abs(a.y1 - (r.ay0 + r.side)) < tol


def test_burned_in_text_outside_the_active_area_is_masked():
    r = SceneRenderer(SynthParams(seed=2, seconds=2, width=1280, height=720, fps=25))
    img = r.render(10).image
    spec = PreprocessSpec()
    a = find_active_area(img, spec)
    assert a.x0 > 0.2 * 1280          # the text column on the left is not part of the crop
    out = crop_to_input(img, a, spec)
    assert out.shape == (256, 256, 3)
    assert out[-40:, :40].max() == 0   # lower-left corner blacked out on every image


def test_dark_frame_falls_back_to_full_frame():
    a = find_active_area(np.zeros((200, 300, 3), np.uint8), PreprocessSpec())
    assert (a.x0, a.y0, a.x1, a.y1) == (0, 0, 300, 200)


def test_box_maps_back_to_the_full_frame():
    img = np.zeros((400, 600, 3), np.uint8)
    img[50:350, 150:450] = 160                       # the active area: a 300x300 square
    spec = PreprocessSpec(corner_mask=(0.0, 1.0))
    pre = preprocess(img, spec)
    assert pre.tensor.shape == (1, 3, 256, 256) and pre.tensor.dtype == np.float32
    x0, y0, x1, y1 = input_to_frame_box((0, 0, 256, 128), pre, spec)
    assert np.allclose([x0, y0, x1, y1], [150 / 600, 50 / 400, 450 / 600, 200 / 400], atol=0.02)


def test_mask_follows_the_same_crop():
    img = np.zeros((400, 600, 3), np.uint8)
    img[50:350, 150:450] = 160
    m = np.zeros((400, 600), np.uint8)
    m[50:200, 150:300] = 1                           # top-left quarter of the active area
    spec = PreprocessSpec()
    cm = crop_mask(m, find_active_area(img, spec), spec)
    assert cm[:120, :120].mean() > 0.95 and cm[136:, 136:].max() == 0


def test_normalise_uses_the_model_colour_order():
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 2] = 255                                # pure red in BGR
    x = normalise(img, PreprocessSpec(mean=(0, 0, 0), std=(1, 1, 1)))
    assert x[0, 0].max() == 255 and x[0, 2].max() == 0      # RGB: red first
    y = normalise(img, PreprocessSpec(mean=(0, 0, 0), std=(1, 1, 1), color_order="BGR"))
    assert y[0, 2].max() == 255


@pytest.mark.parametrize("kw, message", [
    (dict(color_order="RGBA"), r"color_order: expected 'RGB' or 'BGR'"),
    (dict(input_height=8), r"input size: expected 16..2048"),
    (dict(std=(1, 0, 1)), r"std > 0"),
])
def test_bad_spec(kw, message):
    with pytest.raises(ValueError, match=message):
        PreprocessSpec(**kw)


# ------------------------------------------------------------------------------------------ area schedule
def _scope_frame(h=360, w=640, centre=(320, 180), r=150, lumen=False, value=150):
    import cv2
    img = np.zeros((h, w, 3), np.uint8)
    cv2.circle(img, centre, r, (value - 40, value - 20, value), -1)
    if lumen:
        cv2.circle(img, centre, r // 2, (5, 5, 5), -1)          # a dark lumen inside the view
    return img


def test_border_watch_searches_on_schedule_and_when_the_view_changes():
    from engines.runtime.area_watch import BorderWatch
    from engines.runtime.preprocess import PreprocessSpec, find_active_area
    spec = PreprocessSpec()
    watch = BorderWatch(every=10, threshold=spec.border_threshold)
    a = _scope_frame()

    def step(img):
        if watch.due(img):
            watch.searched(img, find_active_area(img, spec))
            return True
        watch.skipped()
        return False
    assert step(a)                                              # first frame
    flags = [step(a) for _ in range(25)]
    assert flags == ([False] * 9 + [True]) * 2 + [False] * 5    # every 10 frames on a still view
    assert [step(_scope_frame(lumen=True)) for _ in range(3)] == [False] * 3   # dark lumen: no new search
    moved = _scope_frame(centre=(450, 180), r=170)               # the view moved/grew into the old border
    assert step(moved) and watch.triggered == 1
    assert not step(moved)
    assert step(_scope_frame(h=480, w=640))                      # a new frame size
    full = np.full((480, 640, 3), 120, np.uint8)                 # full-screen view: the border lights up
    assert step(full) and watch.triggered == 2


def test_detector_follows_a_layout_change_on_the_same_frame(tiny_model):
    from engines.detector import Detector
    from stream.config import load_config
    cfg = load_config(None, [f"engine.model={tiny_model}", "engine.backend=onnxruntime",
                             "preprocess.active_area_every=1000"])
    with Detector(cfg.engine, cfg.preprocess) as det:
        det.detect(_scope_frame())
        small = det.area.area
        assert small.x1 - small.x0 < 330
        det.detect(np.full((360, 640, 3), 120, np.uint8))
        assert det.area.area.x0 <= 4 and det.area.area.x1 >= 636         # searched again at once, not 1000 frames later
        assert det.area.watch.searches == 2


@pytest.mark.parametrize("h, w, input_size", [(1080, 1920, 192), (1080, 1920, 256), (720, 1280, 192),
                                              (576, 720, 192), (479, 641, 192), (240, 320, 64)])
def test_between_searches_the_live_path_gives_the_shared_preprocessing_to_the_pixel(h, w, input_size):
    """Between area searches the detector halves only the crop's region of the frame; the model input must be the
    shared preprocessing's (``preprocess``: the whole frame's pyramid) to the bit, for every frame size and area."""
    from engines.runtime.preprocess import pyramid, crop_to_input_at_depth, keep_mask, pyramid_depth
    spec = PreprocessSpec(input_height=input_size, input_width=input_size)
    r = SceneRenderer(SynthParams(seed=5, seconds=10, width=w, height=h, fps=25))
    for i in (10, 90, 170):
        img = r.render(i).image
        levels = pyramid(img, max(spec.analysis_width, spec.input_width))
        assert len(levels) == pyramid_depth(h, w, spec)
        area = find_active_area(img, spec, levels)
        for a in (area, ActiveArea(area.x0 + 3, area.y0 + 1, area.x1 - 5, area.y1 - 1, area.polygon)):
            want = crop_to_input(img, a, spec, levels)
            got = crop_to_input_at_depth(img, a, spec, len(levels))
            assert np.array_equal(got, want)
            assert np.array_equal(crop_to_input_at_depth(img, a, spec, len(levels), keep_mask(a, spec)), want)


def test_the_detector_between_searches_equals_the_shared_preprocessing(tiny_model):
    from engines.detector import Detector
    from stream.config import load_config
    cfg = load_config(None, [f"engine.model={tiny_model}", "engine.backend=onnxruntime", "engine.precision=fp32",
                             "preprocess.active_area_every=1000"])
    r = SceneRenderer(SynthParams(seed=8, seconds=10, width=960, height=540, fps=25))
    with Detector(cfg.engine, cfg.preprocess) as det:
        frames = [r.render(i).image for i in range(0, 200, 20)]
        first = det.preprocess(frames[0])
        for f in frames[1:]:
            got = det.preprocess(f)
            assert got.area is first.area                           # no search: the area is kept
            want = crop_to_input(f, first.area, det.spec, _levels_of(f, det.spec))
            assert np.array_equal(got.tensor, normalise(want, det.spec))
        assert det.area.watch.searches == 1


def _levels_of(img, spec):
    from engines.runtime.preprocess import pyramid
    return pyramid(img, max(spec.analysis_width, spec.input_width))
