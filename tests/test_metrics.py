import numpy as np
import pytest

from engines.evaluation.metrics import auroc, box_iou, sens_spec, threshold_for_specificity
from stream.latency import percentiles_ms


@pytest.mark.parametrize("labels, scores, expected", [
    ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),
    ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),
    ([0, 1], [0.5, 0.5], 0.5),
    ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
    ([1, 1], [0.1, 0.2], None),
])
def test_auroc(labels, scores, expected):
    assert auroc(np.array(labels), np.array(scores)) == expected


def test_threshold_for_specificity_gives_at_least_that_specificity():
    neg = np.linspace(0, 1, 101)
    t = threshold_for_specificity(neg, 0.95)
    assert (neg < t).mean() >= 0.95
    assert (neg < np.nextafter(t, -1)).mean() < 0.96


def test_sens_spec_and_iou_and_percentiles():
    assert sens_spec([1, 1, 0, 0], [1, 0, 0, 1]) == (0.5, 0.5)
    assert box_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert box_iou((0, 0, 0.5, 1), (0.5, 0, 1, 1)) == 0.0
    assert box_iou((0, 0, 1, 1), (0, 0, 0.5, 1)) == 0.5
    p = percentiles_ms([1_000_000] * 99 + [10_000_000])
    assert (p["p50"], p["max"], p["count"]) == (1.0, 10.0, 100)
