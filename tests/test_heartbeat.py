"""The heartbeat's clock: the configured rate on average, whatever the loop's own rhythm."""
import pytest

from stream.heartbeat import BeatClock

MS = 1_000_000


@pytest.mark.parametrize("hz, loop_ms", [(5, 33), (5, 16), (10, 33), (2, 50), (5, 7)])
def test_beats_keep_the_configured_rate_when_checked_between_frames(hz, loop_ms):
    """Checked once per frame (every 33 ms at 30 fps), the old schedule (next = now + period) ran at 4.6/s for
    5/s; the grid does not drift."""
    clock = BeatClock(hz)
    seconds = 60
    beats = sum(clock.due(t * loop_ms * MS) for t in range(seconds * 1000 // loop_ms))
    assert abs(beats - hz * seconds) <= 1


def test_a_stall_starts_a_new_grid_instead_of_a_burst():
    clock = BeatClock(5)
    assert clock.due(0) and not clock.due(100 * MS) and clock.due(200 * MS)
    assert clock.due(2000 * MS)                       # 1.8 s stalled: one beat, not nine at once
    assert not clock.due(2010 * MS) and clock.due(2200 * MS)


def test_the_loop_waits_no_longer_than_the_next_beat():
    clock = BeatClock(5)
    assert clock.wait_s(0, 0.05) == 0.0               # nothing sent yet: the first beat is due at once
    clock.due(0)
    assert clock.wait_s(180 * MS, 0.05) == pytest.approx(0.02)
    assert clock.wait_s(10 * MS, 0.05) == 0.05
    with pytest.raises(ValueError, match="rate > 0"):
        BeatClock(0)
