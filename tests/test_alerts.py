import pytest

from engines.runtime.alerts import AlertFilter
from stream.detection import AlertState as A

ON, OFF = A.ON, A.OFF


@pytest.mark.parametrize("scores, expected", [
    ([0.9], [OFF]),                                                  # one frame never raises
    ([0.9, 0.1, 0.9, 0.1, 0.1], [OFF] * 5),                          # 2 of 5: no alert
    ([0.9, 0.9, 0.9], [OFF, OFF, ON]),                               # 3 of 5: alert on the third
    ([0.9, 0.1, 0.9, 0.9], [OFF, OFF, OFF, ON]),                     # 3 of the last 4
    ([0.9, 0.9, 0.9, 0.1, 0.9, 0.9], [OFF, OFF, ON, ON, ON, ON]),    # one low frame never drops it
    ([0.9, 0.9, 0.9, 0.45, 0.45, 0.45, 0.45], [OFF, OFF, ON, ON, ON, ON, ON]),   # between off and on: stays
    ([0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1], [OFF, OFF, ON, ON, ON, ON, OFF]),      # 4 under off: drops
])
def test_persistence_and_hysteresis(scores, expected):
    f = AlertFilter(on=0.5, off=0.4, window=5, min_hits=3, min_misses=4)
    assert [f.update(s) for s in scores] == expected


@pytest.mark.parametrize("kw, message", [
    (dict(on=0.4, off=0.5, window=5, min_hits=3, min_misses=4), r"0 < off <= on < 1"),
    (dict(on=0.5, off=0.4, window=2, min_hits=3, min_misses=1), r"min_hits, min_misses <= window \(2\)"),
])
def test_bad_parameters(kw, message):
    with pytest.raises(ValueError, match=message):
        AlertFilter(**kw)
