"""The procedure record (record.dir): one gallery entry per alert episode with its box, written off the hot path; a
record that cannot be written is reported and the run goes on; the oldest procedures are pruned past the limit."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from stream.config import load_config
from stream.pipeline import Pipeline


def run(clip: Path, *sets: str) -> dict:
    cfg = load_config(None, ["capture.pace=false", "publisher.endpoint=tcp://127.0.0.1:*", "engine.backend=onnxruntime",
                             *sets])
    return Pipeline(cfg, source=str(clip)).run()


def episodes_in(log: Path) -> list[tuple[int, int]]:
    out, start, prev = [], None, None
    for line in log.read_text().splitlines():
        d = json.loads(line)
        if d["alert"] == "on" and start is None:
            start = d["frame_index"]
        if d["alert"] != "on" and start is not None:
            out.append((start, prev))
            start = None
        prev = d["frame_index"]
    return out + ([(start, prev)] if start is not None else [])


def test_one_gallery_entry_per_alert_episode_each_with_its_box(polyp_clip, tmp_path):
    s = run(polyp_clip, f"record.dir={tmp_path / 'rec'}", "alerts.min_hits=2", "alerts.window=3", "alerts.min_misses=2")
    (folder,) = [p for p in (tmp_path / "rec").iterdir()]
    expected = episodes_in(folder / "detections.jsonl")
    assert s["processed"] == 150 and len((folder / "detections.jsonl").read_text().splitlines()) == 150
    entries = [json.loads(x) for x in (folder / "episodes.jsonl").read_text().splitlines()]
    assert expected and [(e["first_frame"], e["last_frame"]) for e in entries] == expected
    for e in entries:
        img = cv2.imread(str(folder / e["image"]))
        assert img is not None and img.shape[1] == 480 and e["boxes"] and e["peak_score"] >= 0.5
        assert e["first_frame"] <= e["peak_frame"] <= e["last_frame"] and e["duration_s"] >= 0
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["record"]["episodes"] == len(entries) and summary["record"]["error"] == ""
    assert s["record"]["dropped"] == 0


def test_a_record_that_cannot_be_written_is_reported_and_the_run_goes_on(polyp_clip, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    s = run(polyp_clip, f"record.dir={blocker / 'rec'}")
    assert s["processed"] == 150                                   # every frame, the record notwithstanding
    assert s["record"]["error"].startswith(("FileExistsError", "NotADirectoryError"))


def test_the_oldest_procedures_are_pruned_past_the_limit(polyp_clip, tmp_path):
    root = tmp_path / "rec"
    for name in ("20260101-000000-a", "20260102-000000-b", "20260103-000000-c"):
        (root / name).mkdir(parents=True)
        (root / name / ".polypwatch-procedure").write_text("written by polypwatch run")   # as a run writes it
        (root / name / "procedure.json").write_text("{}")
        (root / name / "detections.jsonl").write_bytes(b"x" * 600_000)
    s = run(polyp_clip, f"record.dir={root}", "record.max_mb=1.0")
    assert s["record"]["pruned"] == ["20260101-000000-a", "20260102-000000-b"]
    left = sorted(p.name for p in root.iterdir())
    assert left[0] == "20260103-000000-c" and len(left) == 2


def test_a_long_run_prunes_the_oldest_procedures_as_it_writes(polyp_clip, tmp_path):
    root = tmp_path / "rec"
    for name in ("20260101-000000-a", "20260102-000000-b", "20260103-000000-c"):
        (root / name).mkdir(parents=True)
        (root / name / ".polypwatch-procedure").write_text("written by polypwatch run")   # as a run writes it
        (root / name / "procedure.json").write_text("{}")
        (root / name / "detections.jsonl").write_bytes(b"x" * 330_000)
    s = run(polyp_clip, f"record.dir={root}", "record.max_mb=1.0")      # 0.99 MB at the start: nothing to prune
    assert s["record"]["pruned"] == ["20260101-000000-a"] and s["record"]["error"] == ""
    assert s["record"]["skipped"] == 0
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) <= 1_000_000 + 50_000


def test_a_procedure_alone_over_the_limit_stops_its_record_and_the_run_goes_on(polyp_clip, tmp_path):
    root = tmp_path / "rec"
    s = run(polyp_clip, f"record.dir={root}", "record.max_mb=0.02")
    (folder,) = list(root.iterdir())
    assert s["processed"] == 150 and s["record"]["skipped"] > 0
    assert s["record"]["error"].startswith("record.max_mb (0.02 MB) reached by this procedure alone")
    assert len((folder / "detections.jsonl").read_text().splitlines()) < 150
    summary = json.loads((folder / "summary.json").read_text())     # the summary is still written
    assert summary["record"]["error"] == s["record"]["error"]


def test_pruning_touches_only_what_polypwatch_wrote_and_counts_only_that(polyp_clip, tmp_path):
    """The issue's case: the user's thesis and a folder of their own with a procedure.json and a review beside a
    record.max_mb of 1 MB; and a review the user added inside a real old procedure."""
    root = tmp_path / "rec"
    (root / "mystuff").mkdir(parents=True)
    (root / "mystuff" / "thesis.pdf").write_bytes(b"%PDF" + b"t" * 3_000_000)
    (root / "old-proc").mkdir()
    (root / "old-proc" / "procedure.json").write_text("{}")
    (root / "old-proc" / "my_review.docx").write_bytes(b"r" * 500_000)
    ours = root / "20260101-000000-a"
    ours.mkdir()
    (ours / ".polypwatch-procedure").write_text("written by polypwatch run")
    (ours / "procedure.json").write_text("{}")
    (ours / "detections.jsonl").write_bytes(b"x" * 900_000)
    (ours / "episode-0001.jpg").write_bytes(b"j" * 100_000)
    (ours / "my_notes.txt").write_text("the reviewer's notes")
    s = run(polyp_clip, f"record.dir={root}", "record.max_mb=1.0")
    assert s["record"]["pruned"] == ["20260101-000000-a"] and s["record"]["error"] == ""   # said, and only ours
    assert (root / "mystuff" / "thesis.pdf").stat().st_size == 3_000_004
    assert sorted(p.name for p in (root / "old-proc").iterdir()) == ["my_review.docx", "procedure.json"]
    assert sorted(p.name for p in ours.iterdir()) == ["my_notes.txt"]                      # the user's file stays
    (new,) = [p for p in root.iterdir() if p.name not in ("mystuff", "old-proc", ours.name)]
    assert len((new / "detections.jsonl").read_text().splitlines()) == 150                # not stopped at 0 bytes


def test_the_root_folder_is_never_a_record_dir():
    from engines.errors import ConfigError
    with pytest.raises(ConfigError, match="record.dir: expected a folder for procedure records, got the root folder"):
        load_config(None, ["record.dir=/"])
