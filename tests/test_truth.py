
import pytest

from engines.truth import load_truth
from engines.errors import TruthError


def test_round_trip(clip, tmp_path):
    t = load_truth(clip.with_suffix(".json"))
    p = tmp_path / "t.json"
    t.write(p)
    assert load_truth(p) == t


@pytest.mark.parametrize("content, message", [
    ("{not json", r"not valid JSON"),
    ('{"format": "other"}', r"expected format 'polypwatch-truth'"),
    ('{"format": "polypwatch-truth", "version": 9}', r"expected version 1, got 9"),
    ('{"format": "polypwatch-truth", "version": 1, "fps": 30, "frame_count": 2, "frames": [[]], "polyps": []}',
     r"frames: expected 2 entries \(frame_count\), got 1"),
    ('{"format": "polypwatch-truth", "version": 1, "fps": 30, "frame_count": 1, "frames": [[{"id": 1, "box": [0, 1]}]], "polyps": []}',
     r"frames\[0\]\[0\].box: expected \[x0, y0, x1, y1\]"),
    ('{"format": "polypwatch-truth", "version": 1, "fps": "x", "frame_count": 1, "frames": [[]], "polyps": []}',
     r"fps: expected"),
])
def test_bad_truth_files(tmp_path, content, message):
    p = tmp_path / "t.json"
    p.write_text(content)
    with pytest.raises(TruthError, match=message):
        load_truth(p)


def test_missing_truth(tmp_path):
    with pytest.raises(TruthError, match="file not found"):
        load_truth(tmp_path / "nope.json")
