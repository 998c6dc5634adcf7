"""Temperature scaling and a threshold that holds on every negative source."""
import numpy as np
import pytest

from engines.training.calibrate import (
    calibrated,
    fit_temperature,
    nll,
    required_specificity,
    threshold_for_cells,
)


@pytest.mark.parametrize("true_t", [0.5, 1.0, 3.0])
def test_temperature_recovers_the_overconfidence(true_t):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20000)
    z = (2 * y - 1) + rng.normal(0, 1, len(y))              # calibrated logit is 2z
    p = 1 / (1 + np.exp(-2 * z * true_t))                    # reported with temperature 1/true_t
    t = fit_temperature(y, p)
    assert t == pytest.approx(true_t, rel=0.05)
    assert nll(y, calibrated(p, t)) <= nll(y, p) + 1e-9
    order = np.argsort(p)
    assert np.all(np.diff(calibrated(p, t)[order]) >= -1e-12)   # ranking (AUROC) unchanged


def test_temperature_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        fit_temperature(np.ones(5), np.full(5, 0.7))


def test_threshold_holds_on_every_negative_source():
    """Session 9's rule (cells by source, no margin) is the rule with one view per source and margin 0."""
    rng = np.random.default_rng(1)
    easy = rng.uniform(0, 0.2, 500)                          # a big easy source
    hard = rng.uniform(0, 0.8, 60)                           # a small hard one
    scores = np.r_[easy, hard, rng.uniform(0.5, 1, 100)]
    labels = np.r_[np.zeros(560), np.ones(100)].astype(int)
    sources = ["easy"] * 500 + ["hard"] * 60 + ["easy"] * 100
    flat = ["frame"] * len(scores)
    t, per = threshold_for_cells(scores, labels, sources, flat, 0.95, margin_se=0)
    assert t == per["hard"] > per["easy"] and t >= per["(pooled)"]
    for name, s in (("easy", easy), ("hard", hard)):
        assert (s < t).mean() >= 0.95, name
    t_small, per_small = threshold_for_cells(scores, labels, sources, flat, 0.95, margin_se=0, min_negatives=100)
    assert "hard" not in per_small and t_small < t               # too few negatives: pooled only


def test_a_hard_view_cannot_hide_behind_easy_views_of_its_source():
    """Session 11's v4: Kvasir's validation negatives were mostly easy mined views; its frames as recorded, the
    kind the unseen normals are, sat above the source's threshold more often than 5%."""
    rng = np.random.default_rng(2)
    views_easy = rng.uniform(0, 0.3, 400)                    # mined views: easy
    frames = np.r_[rng.uniform(0, 0.5, 88), rng.uniform(0.6, 0.9, 12)]  # 12% of frames as recorded score high
    scores = np.r_[views_easy, frames, rng.uniform(0.5, 1, 50)]
    labels = np.r_[np.zeros(500), np.ones(50)].astype(int)
    sources = ["kvasir"] * 550
    views = ["region"] * 400 + ["frame"] * 100 + ["frame"] * 50
    t_source, _ = threshold_for_cells(scores, labels, sources, ["frame"] * 550, 0.95, margin_se=0)
    assert (frames >= t_source).mean() > 0.05                # by source alone, the frames are not held
    t, per = threshold_for_cells(scores, labels, sources, views, 0.95, margin_se=0)
    assert t == per["kvasir frame"] > per["kvasir region"]
    assert (frames >= t).mean() <= 0.05 and (views_easy >= t).mean() <= 0.05


def test_the_margin_grows_as_the_cell_shrinks():
    assert required_specificity(0.95, 10_000, 1.0) == pytest.approx(0.95 + np.sqrt(0.95 * 0.05 / 10_000))
    assert required_specificity(0.95, 100, 1.0) == pytest.approx(0.95 + np.sqrt(0.95 * 0.05 / 100))
    assert required_specificity(0.95, 100, 0.0) == 0.95
    assert required_specificity(0.95, 30, 1.0) == pytest.approx(1 - 1 / 30)   # never more than one frame over
    rng = np.random.default_rng(3)
    neg = rng.uniform(0, 1, 100)
    scores = np.r_[neg, np.ones(10)]
    labels = np.r_[np.zeros(100), np.ones(10)].astype(int)
    t0, _ = threshold_for_cells(scores, labels, ["a"] * 110, ["frame"] * 110, 0.95, margin_se=0)
    t1, _ = threshold_for_cells(scores, labels, ["a"] * 110, ["frame"] * 110, 0.95, margin_se=1)
    assert (neg < t0).mean() == pytest.approx(0.95) and (neg < t1).mean() == pytest.approx(0.98)
    assert t1 > t0


def test_cells_need_matching_rows_and_negatives():
    with pytest.raises(ValueError, match="differ in length"):
        threshold_for_cells(np.zeros(3), np.zeros(3), ["a"] * 3, ["frame"] * 2, 0.95)
    with pytest.raises(ValueError, match="no negative"):
        threshold_for_cells(np.zeros(3), np.ones(3), ["a"] * 3, ["frame"] * 3, 0.95)


def test_folding_the_temperature_into_the_network_divides_the_logit():
    torch = pytest.importorskip("torch")
    from engines.model import PolypNet, fold_temperature
    torch.manual_seed(0)
    net = PolypNet(pretrained=False).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        s0, h0 = net(x)
        fold_temperature(net, 2.5)
        s1, h1 = net(x)
    assert torch.allclose(s1, s0 / 2.5, atol=1e-6) and torch.equal(h0, h1)
    with pytest.raises(ValueError, match="temperature > 0"):
        fold_temperature(net, 0.0)
