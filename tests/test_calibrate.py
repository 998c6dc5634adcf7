"""Temperature scaling and a threshold that holds on every negative source."""
import numpy as np
import pytest

from engines.lab.training.calibrate import calibrated, fit_temperature, nll, threshold_for_sources


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
    rng = np.random.default_rng(1)
    easy = rng.uniform(0, 0.2, 500)                          # a big easy source
    hard = rng.uniform(0, 0.8, 60)                           # a small hard one
    scores = np.r_[easy, hard, rng.uniform(0.5, 1, 100)]
    labels = np.r_[np.zeros(560), np.ones(100)].astype(int)
    sources = ["easy"] * 500 + ["hard"] * 60 + ["easy"] * 100
    t, per = threshold_for_sources(scores, labels, sources, 0.95)
    assert t == per["hard"] > per["easy"] and t >= per["(pooled)"]
    for name, s in (("easy", easy), ("hard", hard)):
        assert (s < t).mean() >= 0.95, name
    assert (hard < per["easy"]).mean() < 0.95                # the easy source's own threshold would not hold
    t_small, per_small = threshold_for_sources(scores, labels, sources, 0.95, min_negatives=100)
    assert "hard" not in per_small and t_small < t               # too few negatives: pooled only


def test_threshold_needs_matching_rows_and_negatives():
    with pytest.raises(ValueError, match="differ in length"):
        threshold_for_sources(np.zeros(3), np.zeros(3), ["a"] * 2, 0.95)
    with pytest.raises(ValueError, match="no negative"):
        threshold_for_sources(np.zeros(3), np.ones(3), ["a"] * 3, 0.95)


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
