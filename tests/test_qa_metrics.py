"""Replay metrics on hand-made truth and detections with known answers."""
import pytest

from engines.truth import FramePolyp, GroundTruth, PolypTrack, intervals_from_frames
from stream.detection import AlertState, Box, Detection
from stream.lab.qa.metrics import alert_episodes, compute

ON, OFF = AlertState.ON, AlertState.OFF
BOX = (0.2, 0.2, 0.4, 0.4)


def truth_from(visible: list[list[int]], fps=10.0) -> GroundTruth:
    frames = tuple(tuple(FramePolyp(pid, BOX) for pid in ids) for ids in visible)
    runs = intervals_from_frames(visible)
    return GroundTruth(fps=fps, frame_count=len(visible), width=100, height=100,
                       polyps=tuple(PolypTrack(pid, "sessile", tuple(runs[pid])) for pid in sorted(runs)),
                       frames=frames)


def dets_from(alerts: str, scores=None, box=BOX):
    """alerts: one char per frame: '1' on, '0' off, '.' not processed (dropped), 'E' engine error."""
    out = []
    for i, c in enumerate(alerts):
        if c == ".":
            continue
        if c == "E":
            out.append(Detection.failed(i, i, "s", "boom", frame_index=i))
            continue
        s = scores[i] if scores else (0.9 if c == "1" else 0.1)
        out.append(Detection(seq=i, t_capture_ns=i, source="s", score=s, alert=ON if c == "1" else OFF,
                             boxes=(Box(*box, s),) if c == "1" else (), frame_index=i))
    return out


def test_episodes_ignore_dropped_frames():
    eps = alert_episodes(dets_from("0011.1100111"))
    assert [(e.first, e.last) for e in eps] == [(2, 6), (9, 11)]


def test_polyp_detected_late_with_time_to_detection():
    truth = truth_from([[]] * 3 + [[1]] * 10 + [[]] * 7)        # polyp visible in frames 3..12
    m = compute(truth, dets_from("00000011111100000000"), fps=10, frame_count=20, threshold=0.5)
    p = m["polyps"]["each"][0]
    assert (p["detected"], p["first_alert"], p["time_to_detection_frames"], p["time_to_detection_ms"]) == (True, 6, 3, 300.0)
    assert m["polyps"]["detection_rate"] == 1.0
    assert m["false_alarms"]["count"] == 0
    assert m["frame_alert"] == {"sensitivity": 0.6, "specificity": 1.0, "tp": 6, "fn": 4, "tn": 10, "fp": 0}
    assert m["box_iou_true_positive"]["median"] == 1.0


def test_polyp_visible_for_one_frame():
    truth = truth_from([[]] * 5 + [[1]] + [[]] * 4)
    missed = compute(truth, dets_from("0000000000"), 10, 10, 0.5)
    assert missed["polyps"]["detected"] == 0 and missed["polyps"]["time_to_detection_ms"]["count"] == 0
    hit = compute(truth, dets_from("0000010000"), 10, 10, 0.5)
    assert hit["polyps"]["each"][0]["time_to_detection_frames"] == 0


def test_alert_that_starts_before_the_polyp_is_not_a_false_alarm():
    truth = truth_from([[]] * 4 + [[1]] * 4 + [[]] * 2)
    m = compute(truth, dets_from("0011111100"), 10, 10, 0.5)
    assert m["false_alarms"]["count"] == 0 and m["polyps"]["each"][0]["time_to_detection_frames"] == 0
    assert m["frame_alert"]["specificity"] == pytest.approx(4 / 6, abs=1e-4)


def test_no_polyps_at_all_false_alarms_and_durations():
    truth = truth_from([[]] * 600)                               # one minute at 10 fps
    alerts = "0" * 100 + "1" * 3 + "0" * 100 + "1" * 7 + "0" * 100 + "1" * 12 + "0" * 278
    m = compute(truth, dets_from(alerts), fps=10, frame_count=600, threshold=0.5)
    fa = m["false_alarms"]
    assert fa["count"] == 3 and fa["per_minute"] == 3.0
    assert fa["durations_s"] == [0.3, 0.7, 1.2]
    assert (fa["count_ge_0.5s"], fa["count_ge_1.0s"]) == (2, 1)
    assert m["polyps"]["count"] == 0 and m["polyps"]["detection_rate"] is None
    assert m["frame_raw"]["sensitivity"] is None and m["frame_raw"]["specificity"] == pytest.approx(578 / 600, abs=1e-4)


def test_raw_score_auroc_and_errors():
    truth = truth_from([[]] * 4 + [[1]] * 4)
    scores = [0.1, 0.2, 0.75, 0.6, 0.5, 0.7, 0.8, 0.9]
    m = compute(truth, dets_from("0000E111", scores), 10, 8, 0.5)
    assert m["errors"] == 1 and m["processed"] == 8
    assert m["frame_raw"]["auroc"] == pytest.approx(11 / 12, abs=1e-4)   # frame 4 (error) left out


def test_without_truth_only_alert_statistics():
    m = compute(None, dets_from("0110001110"), 10, 10, 0.5)
    assert m["alert_episodes"] == 2 and "false_alarms" not in m and "polyps" not in m
