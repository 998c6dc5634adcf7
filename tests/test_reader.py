import time

import pytest

from engines.errors import SourceError
from stream.reader import LatestFrameReader
from stream.sources import FolderSource, OpenCVSource, make_source


def _drain(reader, per_frame_s=0.0, limit_s=20.0):
    got, t_end = [], time.monotonic() + limit_s
    while time.monotonic() < t_end:
        f = reader.get(timeout=0.2)
        if f is None:
            if reader.ended:
                break
            continue
        got.append(f)
        time.sleep(per_frame_s)
    return got


def test_paced_reader_keeps_only_the_newest_and_counts_drops(clip):
    r = LatestFrameReader(OpenCVSource(str(clip)), pace=True).start()
    got = _drain(r, per_frame_s=0.1)        # a consumer 3x slower than the 30 fps clip
    r.stop()
    st = r.stats()
    seqs = [f.seq for f in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert st.read == 120 and st.dropped > 40
    assert len(got) + st.dropped == st.read          # nothing silently lost from the statistics
    # each frame taken was the newest at the time: gaps show dropped frames, never reordering
    assert max(b - a for a, b in zip(seqs, seqs[1:])) >= 2


def test_qa_mode_processes_every_frame_in_order(clip):
    r = LatestFrameReader(OpenCVSource(str(clip)), pace=False).start()
    got = _drain(r, per_frame_s=0.002)
    r.stop()
    assert [f.index for f in got] == list(range(120))
    assert r.stats().dropped == 0 and r.ended


def test_paced_file_is_released_at_its_frame_rate(clip):
    r = LatestFrameReader(OpenCVSource(str(clip)), pace=True).start()
    t0 = time.monotonic()
    got = _drain(r)
    r.stop()
    assert 3.6 < time.monotonic() - t0 < 6.0          # 120 frames at 30 fps = 4 s
    assert len(got) >= 110


class FlakyLiveSource(OpenCVSource):
    """A real video file that behaves like a live device which loses its signal for a while."""

    live, finite = True, False

    def __init__(self, path, fail_from, fail_reads):
        super().__init__(path)
        self.live, self.finite = True, False
        self.fail_from, self.fail_left, self.opens = fail_from, fail_reads, 0

    def open(self):
        self.opens += 1
        super().open()

    def read(self):
        if self.index + 1 >= self.fail_from and self.fail_left > 0:
            self.fail_left -= 1
            raise SourceError("device unplugged")
        return super().read()


def test_live_source_failure_reports_no_signal_and_reopens(clip):
    src = FlakyLiveSource(str(clip), fail_from=10, fail_reads=3)
    r = LatestFrameReader(src, pace=False, reopen_initial_s=0.05, reopen_max_s=0.2).start()
    saw_no_signal = recovered = False
    got = []
    t_end = time.monotonic() + 10
    while time.monotonic() < t_end and (len(got) < 30 or r.stats().reopen_attempts < 3):
        f = r.get(timeout=0.05)
        saw_no_signal |= not r.signal
        if f is not None:
            got.append(f)
            recovered |= saw_no_signal          # frames again after the signal was lost
    r.stop()
    assert saw_no_signal and recovered
    assert r.stats().reopen_attempts >= 3 and src.opens >= 4 and r.stats().read_errors >= 3
    assert len(got) >= 30


def test_folder_source_reads_numeric_order(tmp_path):
    import cv2
    import numpy as np
    for i in (1, 2, 10, 3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((32, 32, 3), i, np.uint8))
    r = LatestFrameReader(FolderSource(str(tmp_path), fps=100), pace=False).start()
    got = _drain(r)
    r.stop()
    assert [int(f.image[0, 0, 0]) for f in got] == [1, 2, 3, 10]


@pytest.mark.parametrize("spec, message", [
    ("/nonexistent/clip.mp4", r"video /nonexistent/clip.mp4: file not found"),
    ("synthetic://seed=1&colour=red", r"unknown option\(s\) \['colour'\]"),
    ("synthetic://size=99999x1", r"size: expected between"),
    ("", r"capture.source: expected"),
])
def test_bad_sources(spec, message):
    with pytest.raises(SourceError, match=message):
        make_source(spec).open()


def test_unreadable_video_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceError, match="cannot be opened"):
        OpenCVSource(str(bad)).open()


def test_missing_device():
    with pytest.raises(SourceError, match=r"device /dev/video99: cannot be opened"):
        OpenCVSource("/dev/video99").open()
