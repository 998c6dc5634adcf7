"""The site's truth (issue 49): footage in the procedure record, marks made during a procedure, a reviewer's answers
appended to the record. Real pipelines over generated clips, real files."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from stream.config import load_config
from stream.pipeline import Pipeline


def _pipeline(clip: Path, *sets: str) -> Pipeline:
    cfg = load_config(None, ["publisher.endpoint=tcp://127.0.0.1:*", "engine.backend=onnxruntime",
                             "engine.threads=1", *sets])
    return Pipeline(cfg, source=str(clip))


def _index(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "footage" / "footage.jsonl").read_text().splitlines()]


def test_footage_keeps_every_alert_frame_and_a_few_a_second_elsewhere(polyp_clip, tmp_path):
    s = _pipeline(polyp_clip, "capture.pace=false", f"record.dir={tmp_path / 'rec'}", "record.footage=true",
                  "record.footage_fps=2", "record.thumb_width=160").run()
    (folder,) = list((tmp_path / "rec").iterdir())
    idx = _index(folder)
    dets = [json.loads(x) for x in (folder / "detections.jsonl").read_text().splitlines()]
    alert_frames = {d["frame_index"] for d in dets if d["alert"] == "on"}
    kept = {f["frame_index"] for f in idx}
    dropped = s["record"]["footage"]["dropped"]                         # a full queue drops a frame, and counts it
    assert alert_frames and len(alert_frames - kept) <= dropped          # every frame inside an episode
    assert all((folder / "footage" / f["file"]).is_file() for f in idx)
    import cv2
    assert cv2.imread(str(folder / "footage" / idx[0]["file"])).shape[1] == 160
    quiet = [f for f in idx if f["why"] == "rate"]
    span = max(f["t_s"] for f in idx) - min(f["t_s"] for f in idx)
    assert quiet and len(quiet) <= 2 * span + 2                          # ~2 a second outside episodes
    assert s["record"]["footage"]["frames_written"] == len(idx) and s["record"]["footage"]["dropped"] >= 0


def test_a_mark_keeps_every_frame_of_the_seconds_before_and_after(polyp_clip, tmp_path):
    from stream.truth_files import append_mark, read_marks
    pipe = _pipeline(polyp_clip, "capture.pace=true", f"record.dir={tmp_path / 'rec'}", "record.footage=true",
                     "record.footage_fps=0.5", "record.mark_seconds=1", "record.thumb_width=160",
                     "alerts.on_threshold=0.999", "alerts.min_hits=8", "alerts.window=8")     # no alert episode
    seen = []
    pipe.on_detection = lambda d, frame: seen.append(d)
    th = threading.Thread(target=pipe.run)
    th.start()
    while len(seen) < 75:                                                # 3 s in (25 fps, paced)
        time.sleep(0.02)
    d = seen[-1]
    append_mark(pipe.record.folder, "test", d.seq, d.frame_index, d.t_capture_ns)
    th.join(30)
    folder = pipe.record.folder
    assert [m["mark"] for m in read_marks(folder)] == [1]
    kept = {f["frame_index"] for f in _index(folder) if f["why"] == "mark"}
    around = set(range(d.frame_index - 20, d.frame_index + 21))          # ±0.8 s at 25 fps: all of them kept
    assert len(around - kept) <= pipe.record.report()["footage"]["dropped"], sorted(around - kept)
    assert pipe.record.report()["footage"]["marks"] == 1


# ------------------------------------------------------------------ marks and the review, through the real server
TOKEN = "t" * 24


def _recorded_procedure(clip: Path, root: Path, endpoint: str, marks_while_running=None):
    """A paced run with footage, publishing on ``endpoint``; ``marks_while_running(seen)`` runs in its middle."""
    pipe = _pipeline(clip, "capture.pace=true", f"record.dir={root}", "record.footage=true", "record.footage_fps=2",
                     "record.mark_seconds=1", "record.thumb_width=160", f"publisher.endpoint={endpoint}")
    seen = []
    pipe.on_detection = lambda d, frame: seen.append(d)
    th = threading.Thread(target=pipe.run)
    th.start()
    return pipe, th, seen


def test_marks_and_answers_need_the_token_and_are_kept_with_who_and_when(polyp_clip, tmp_path):
    import asyncio

    import aiohttp

    from conftest import free_port
    from stream.truth_files import read_marks, read_review
    from test_web import _serve, server_cfg
    root = tmp_path / "rec"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cfg = server_cfg(f"web.endpoint={endpoint}", f"record.dir={root}", f"web.token={TOKEN}", "web.uploads=false")
    pipe, th, seen = _recorded_procedure(polyp_clip, root, endpoint)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def fn(url):
        out = {}
        async with aiohttp.ClientSession() as s:
            while len(seen) < 60:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            async with s.post(url + "/api/mark?by=pedal") as r:                     # no token: refused
                out["no_token"] = r.status
            async with s.post(url + "/api/mark?by=pedal", headers={"Authorization": "Bearer " + "x" * 24}) as r:
                out["forged"] = r.status
            async with s.post(url + "/api/mark?by=pedal", headers=auth) as r:
                out["mark"] = (r.status, await r.json())
            name = pipe.record.folder.name
            async with s.post(url + f"/api/procedures/{name}/review", headers=auth,
                              json={"case": "mark-1", "answer": "polyp", "reviewer": "dr a"}) as r:
                out["while_recording"] = (r.status, await r.json())
            await asyncio.get_running_loop().run_in_executor(None, th.join, 30)
            async with s.get(url + f"/api/procedures/{name}/review", headers=auth) as r:
                out["review"] = await r.json()
            case = out["review"]["cases"][-1]
            frame = case["frames"][len(case["frames"]) // 2]["frame_index"]
            bad = [{"case": "mark-9", "answer": "polyp", "reviewer": "dr a"},
                   {"case": "mark-1", "answer": "maybe", "reviewer": "dr a"},
                   {"case": "mark-1", "answer": "polyp", "reviewer": ""},
                   {"case": "mark-1", "answer": "polyp", "reviewer": "dr a", "frame_index": 10 ** 6},
                   {"case": "mark-1", "answer": "polyp", "reviewer": "dr a", "frame_index": frame, "box": [0.5, 0.5, 2, 2]},
                   {"case": "mark-1", "answer": "polyp", "reviewer": "dr a", "extra": 1}]
            out["bad"] = []
            for body in bad:
                async with s.post(url + f"/api/procedures/{name}/review", headers=auth, json=body) as r:
                    out["bad"].append((r.status, (await r.json())["error"]))
            for body in ({"case": "mark-1", "answer": "polyp", "reviewer": "dr a", "frame_index": frame,
                          "box": [0.4, 0.3, 0.6, 0.5]}, {"case": "mark-1", "answer": "unsure", "reviewer": "dr b"}):
                async with s.post(url + f"/api/procedures/{name}/review", headers=auth, json=body) as r:
                    out.setdefault("ok", []).append(r.status)
            async with s.get(url + f"/procedures/{name}/review", headers=auth) as r:
                out["page"] = r.status
        return out
    try:
        out = asyncio.run(_serve(cfg, fn))
    finally:
        th.join(30)
    folder = pipe.record.folder
    assert out["no_token"] == 401 and out["forged"] == 401 and out["mark"][0] == 200, out
    assert out["mark"][1]["by"] == "pedal" and [m["by"] for m in read_marks(folder)] == ["pedal"]
    assert out["while_recording"][0] == 409 and "still being recorded" in out["while_recording"][1]["error"]
    ids = [c["id"] for c in out["review"]["cases"]]
    assert "mark-1" in ids and out["review"]["cases"][-1]["frames"]                  # the mark kept its footage
    assert [s for s, _ in out["bad"]] == [400] * 6, out["bad"]
    assert "not an alert episode or mark of procedure" in out["bad"][0][1]
    assert "not a footage frame of mark-1" in out["bad"][3][1] and "within 0..1" in out["bad"][4][1]
    assert out["ok"] == [200, 200] and out["page"] == 200
    answers, edited = read_review(folder)
    assert edited is None and [(a["reviewer"], a["answer"]) for a in answers] == [("dr a", "polyp"), ("dr b", "unsure")]
    assert answers[0]["box"] == [0.4, 0.3, 0.6, 0.5] and answers[0]["utc"].endswith("Z")


def test_a_review_file_edited_by_hand_is_seen_and_nothing_more_is_appended(polyp_clip, tmp_path):
    from stream.truth_files import TruthError, append_answer, append_mark, read_review
    s = _pipeline(polyp_clip, "capture.pace=false", f"record.dir={tmp_path / 'rec'}", "record.footage=true",
                  "record.thumb_width=160", "alerts.min_hits=2", "alerts.window=3", "alerts.min_misses=2").run()
    folder = Path(s["record"]["folder"])
    with pytest.raises(TruthError, match="has ended: marks are made while it is recorded"):
        append_mark(folder, "web", 1, 1, 1)
    append_answer(folder, "episode-1", "not_polyp", "dr a")
    append_answer(folder, "episode-1", "polyp", "dr b")
    assert len(read_review(folder)[0]) == 2
    lines = (folder / "review.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace("not_polyp", "polyp")                                # an answer changed by hand
    (folder / "review.jsonl").write_text("\n".join(lines) + "\n")
    answers, edited = read_review(folder)
    assert answers == [] and edited == 1
    with pytest.raises(TruthError, match="edited outside polypwatch \\(line 1"):
        append_answer(folder, "episode-1", "polyp", "dr c")
    other = tmp_path / "rec" / "other"
    with pytest.raises(TruthError):
        append_answer(folder, "episode-99", "polyp", "dr a")
    del other


def test_the_overlay_key_marks_in_the_procedure_being_recorded(tmp_path):
    import time as _t

    import stream.overlay.config  # noqa: F401
    from stream.detection import AlertState, Detection
    from stream.overlay.app import Overlay
    from stream.truth_files import read_marks
    from stream.wire import Status
    cfg = load_config(None, ["overlay.endpoint=tcp://127.0.0.1:5999"]).extra["overlay"]
    ov = Overlay(cfg)
    assert ov.mark().startswith("mark not kept: no procedure is being recorded")
    folder = tmp_path / "rec" / "20260101-000000-s"
    folder.mkdir(parents=True)
    (folder / ".polypwatch-procedure").write_text("x")
    (folder / "procedure.json").write_text("{}")
    ov.record_dir = str(tmp_path / "rec")
    now = _t.monotonic_ns()
    ov.view.on_status(Status("running", now, procedure=folder.name), now)
    assert ov.mark() == "mark not kept: no detection has arrived yet"
    ov.view.on_detection(Detection(seq=7, t_capture_ns=now, source="s", score=0.1, alert=AlertState.OFF,
                                   frame_index=41), now)
    assert ov.mark() == f"mark 1 kept at frame 41 of {folder.name}"
    assert [(m["by"], m["seq"], m["frame_index"]) for m in read_marks(folder)] == [("overlay", 7, 41)]
    ov.receiver.close()


@pytest.mark.skipif(__import__("browser").chromium_path() is None, reason="Debian's chromium is not installed")
def test_a_reviewer_answers_in_a_real_browser(polyp_clip, tmp_path):
    import asyncio

    from browser import Browser
    from stream.truth_files import read_review
    from test_web import _serve, server_cfg
    s = _pipeline(polyp_clip, "capture.pace=false", f"record.dir={tmp_path / 'rec'}", "record.footage=true",
                  "record.thumb_width=160", "alerts.min_hits=2", "alerts.window=3", "alerts.min_misses=2").run()
    folder = Path(s["record"]["folder"])
    cfg = server_cfg(f"record.dir={tmp_path / 'rec'}", f"web.token={TOKEN}", "web.uploads=false")

    async def fn(url):
        async with Browser(size=(1200, 900)) as b:
            await b.goto(f"{url}/procedures/{folder.name}/review?token={TOKEN}")
            await b.wait_for("window.polypwatchReview && window.polypwatchReview.loaded >= 1", 20)
            n = await b.eval("window.polypwatchReview.data.cases.length")
            await b.eval("document.getElementById('reviewer').value = 'Dr Reviewer'; "
                         "document.getElementById('reviewer').dispatchEvent(new Event('change')); 1")
            await b.eval("document.querySelector('.case .strip img:nth-child(2)').click(); 1")
            await b.wait_for("document.querySelector('.case canvas')._img !== undefined", 10)
            await b.eval("""(() => { const c = document.querySelector('.case canvas'); const r = c.getBoundingClientRect();
                const ev = (t, fx, fy) => c.dispatchEvent(new MouseEvent(t, {clientX: r.left + fx * r.width,
                    clientY: r.top + fy * r.height, bubbles: true}));
                ev('mousedown', 0.25, 0.25); ev('mouseup', 0.5, 0.6); return 1; })()""")
            await b.eval("document.querySelector('.case button[data-answer=polyp]').click(); 1")
            await b.wait_for("window.polypwatchReview.last && window.polypwatchReview.loaded >= 2", 20)
            shown = await b.eval("document.querySelector('.case ul.answers').textContent")
            shot = await b.screenshot()
            return n, shown, shot
    n, shown, shot = asyncio.run(_serve(cfg, fn))
    import cv2
    cv2.imwrite(str(tmp_path / "review.png"), shot)
    answers, edited = read_review(folder)
    assert n >= 1 and edited is None and len(answers) == 1
    a = answers[0]
    assert a["reviewer"] == "Dr Reviewer" and a["answer"] == "polyp" and a["case"] == "episode-1"
    assert a["box"][0] == pytest.approx(0.25, abs=0.02) and a["box"][3] == pytest.approx(0.6, abs=0.02)
    assert "Dr Reviewer — polyp" in shown and "place marked" in shown


def test_replay_over_procedure_records_judges_the_live_run_by_the_sites_truth(polyp_clip, tmp_path):
    """Two reviewed procedures: one alert episode a polyp, one not, a mark the detector was late on; replay of the
    record folder gives per-procedure and pooled figures, the false-alarm rate as an interval."""
    from conftest import run_cli
    from engines.lab.site.rates import poisson_interval
    from stream.truth_files import append_answer, _append
    root = tmp_path / "rec"
    folders = []
    for _ in range(2):
        s = _pipeline(polyp_clip, "capture.pace=false", f"record.dir={root}", "record.footage=true",
                      "record.thumb_width=160", "alerts.min_hits=2", "alerts.window=3", "alerts.min_misses=2").run()
        folders.append(Path(s["record"]["folder"]))
        time.sleep(1.1)                                        # procedure folders are named by the second
    first = folders[0]
    eps = [json.loads(x) for x in (first / "episodes.jsonl").read_text().splitlines()]
    assert len(eps) >= 2
    dets = [json.loads(x) for x in (first / "detections.jsonl").read_text().splitlines()]
    t0 = dets[0]["t_capture_ns"]
    start2 = eps[1]["start_s"]
    mark_at = next(d for d in dets if (d["t_capture_ns"] - t0) / 1e9 >= start2 - 1.0)       # 1 s before episode 2
    _append(first / "marks.jsonl", {"mark": 1, "by": "pedal", "seq": mark_at["seq"], "frame_index":
                                    mark_at["frame_index"], "t_capture_ns": mark_at["t_capture_ns"], "utc": "x"})
    append_answer(first, "episode-1", "polyp", "dr a")
    append_answer(first, "episode-2", "not_polyp", "dr a")
    out = tmp_path / "truth"
    r = run_cli("replay", str(root), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((out / "site_truth.json").read_text())
    one = next(f for f in result["procedures"] if f["procedure"] == first.name)
    assert one["episodes_polyp"] == 1 and one["episodes_not_polyp"] == 1 and one["reviewed_cases"] == 2
    assert one["marks"][0]["state"] == "late" and 0 < one["marks"][0]["time_to_first_alert_s"] <= 1.01
    assert one["false_alarms_per_minute"] is None                                 # minutes, not half an hour
    assert one["false_alarms_per_minute_ci95"] == list(poisson_interval(1, one["minutes"]))
    assert result["pooled"]["procedures"] == 2 and "too little for a rate" in result["pooled"]["rests_on"]
    assert "site polyps found" in r.stdout and (out / "report.html").is_file()


# ------------------------------------------------------------------ the loop: record -> mark -> review -> check, commission
@pytest.fixture(scope="module")
def site_records(tmp_path_factory, tiny_site_model):
    """Three recorded procedures of a generated tower with footage, each with a mark on a visible polyp, reviewed
    'polyp' with its place, run with the tiny quiet site model of tests/test_site.py's kind."""
    from engines.synthetic.clip import write_clip
    from engines.synthetic.params import SynthParams
    from stream.truth_files import append_answer, append_mark, footage
    d = tmp_path_factory.mktemp("site-records")
    root = d / "rec"
    for k, seed in enumerate((1, 2, 3)):
        clip = d / f"p{k}.mp4"
        write_clip(SynthParams(seed=seed, seconds=6, width=320, height=240, fps=25), clip)
        truth = json.loads(clip.with_suffix(".json").read_text())
        visible = [i for i, f in enumerate(truth["frames"]) if f]
        target = visible[len(visible) // 2]
        pipe = _pipeline(clip, "capture.pace=true", f"record.dir={root}", "record.footage=true",
                         "record.footage_fps=25", "record.mark_seconds=1", "record.thumb_width=320",
                         f"engine.model={tiny_site_model}")
        marked = []

        def on_det(det, frame, pipe=pipe, target=target, marked=marked):
            if det.frame_index == target and not marked:
                marked.append(append_mark(pipe.record.folder, "pedal", det.seq, det.frame_index, det.t_capture_ns))
        pipe.on_detection = on_det
        pipe.run()
        folder = pipe.record.folder
        assert marked
        box = truth["frames"][target][0]["box"]
        kept = {f["frame_index"] for f in footage(folder)}
        assert target in kept
        append_answer(folder, "mark-1", "polyp", "dr a", list(box), target)
        time.sleep(1.1)
    return root


def test_site_check_from_the_records_uses_the_footage_outside_reviewed_polyps(site_records, tmp_path):
    from conftest import run_cli
    out = tmp_path / "sc"
    r = run_cli("site-check", "--records", str(site_records), "--out", str(out), "--set", "engine.threads=1",
                "--set", "record.mark_seconds=1",
                timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads((out / "site_check.json").read_text())
    used = s["records"]["procedures"]
    assert len(used) == 3 and all(p["used"] and p["left_out"] > 0 for p in used)
    from stream.lab.site.records import records_footage
    from stream.truth_files import read_marks
    got = records_footage(site_records, tmp_path / "links", 1.0)
    for folder in got.folders:                                # no frame within ±1 s (25 frames) of a mark is kept
        mark = read_marks(site_records / folder.name)[0]["frame_index"]
        kept = [json.loads(x)["frame_index"] for x in (site_records / folder.name / "footage" / "footage.jsonl")
                .read_text().splitlines() if (folder / json.loads(x)["file"]).exists()]
        assert kept and all(abs(i - mark) > 25 for i in kept)
    assert s["frames"] == sum(p["polyp_free_frames"] for p in used) and s["records"]["positives"] >= 3


def test_commissioning_from_the_records_learns_the_sites_polyps_and_is_named_live(site_records, tmp_path,
                                                                                   tiny_site_model):
    from conftest import run_cli
    from engines.runtime.metadata import read_onnx_metadata
    out = tmp_path / "ward9.onnx"
    r = run_cli("adapt", "--model", str(tiny_site_model), "--records", str(site_records), "--mark-seconds", "1",
                "--site", "ward-9", "--out", str(out), "--steps", "6", "--frames-per-recording", "60", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = read_onnx_metadata(out).training["site_adaptation"]
    assert set(rec["site_polyps"]) == {p.name for p in site_records.iterdir()}           # each procedure held out
    assert all(v["cases"] == 1 and v["after"]["frames_found"] is not None for v in rec["site_polyps"].values())
    assert all("time_to_first_frame_s" in v["after"] for v in rec["site_polyps"].values())
    assert set(rec["per_recording"]) == set(rec["site_polyps"])                         # false alarms per procedure
    assert all(len(v["after"]["per_minute_ci95"]) == 2 for v in rec["per_recording"].values())
    assert "Each recording held out" in out.with_suffix(".commission.html").read_text()
    assert "reviewed polyp frame" in r.stdout
    summary = tmp_path / "run.json"
    clip = next(site_records.iterdir()) / "footage"
    r = run_cli("run", "--source", str(clip), "--set", f"engine.model={out}", "--set", "capture.pace=false",
                "--set", "engine.precision=fp32", "--summary-json", str(summary), timeout=300)
    assert r.returncode == 0 and json.loads(summary.read_text())["site"] == "ward-9", r.stderr[-1500:]


def test_too_few_reviewed_polyps_are_refused_with_how_many_more(site_records, tmp_path, tiny_site_model):
    import shutil

    from conftest import run_cli
    few = tmp_path / "few"
    shutil.copytree(site_records, few, symlinks=True)
    for p in sorted(few.iterdir())[1:]:
        (p / "review.jsonl").unlink()
    r = run_cli("adapt", "--model", str(tiny_site_model), "--records", str(few), "--mark-seconds", "1", "--site",
                "ward-9", "--out", str(tmp_path / "w.onnx"), "--steps", "2", timeout=300)
    assert r.returncode == 2 and "1 reviewed polyp case(s), at least 3 are needed" in r.stderr, r.stderr[-1500:]
    assert "2 more" in r.stderr and not (tmp_path / "w.onnx").exists()
    one = tmp_path / "one"
    shutil.copytree(site_records / sorted(p.name for p in site_records.iterdir())[0], one / "p", symlinks=True)
    r = run_cli("adapt", "--model", str(tiny_site_model), "--records", str(one), "--site", "ward-9", "--out",
                str(tmp_path / "w.onnx"), "--steps", "2", timeout=300)
    assert r.returncode == 2 and "1 procedure(s) with polyp-free footage, at least 2 are needed (1 more)" in r.stderr


def test_the_commissioning_report_times_each_site_polyp_to_its_first_live_alert():
    """Per case, frames in time order through the live 3-of-5 filter: a case with two frames over raises nothing
    (found per frame, not alerted); one with three over in five alerts at the third."""
    import numpy as np

    from engines.lab.site.positives import SitePositives, site_polyp_figures
    times = [0.12, 0.0, 0.04, 0.08, 0.16, 0.2, 0.0, 0.04, 0.08]           # case a given out of order
    scores_ = np.array([0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.9, 0.1, 0.9])    # a in time order: .9 .1 .9 .9 .1 .1
    pos = SitePositives(np.zeros((9, 1, 1, 1), np.float32), np.zeros((9, 1, 1, 1), np.float32),
                        ["p1"] * 6 + ["p2"] * 3, ["a"] * 6 + ["b"] * 3, times)
    held = {"p1": (scores_[:6], ["a"] * 6), "p2": (np.full(3, 0.1), ["b"] * 3)}
    figs = site_polyp_figures(pos, held, scores_, 0.5, 0.5)
    before_a, before_b = figs["p1"]["before"], figs["p2"]["before"]
    assert before_a["time_to_first_frame_s"] == [0.0] and before_a["time_to_first_alert_s"] == [0.12]
    assert before_b["cases_found"] == 1 and before_b["cases_alerted"] == 0 and before_b["time_to_first_alert_s"] == []
    assert figs["p2"]["after"]["cases_found"] == 0 and figs["p2"]["after"]["frames_found"] == 0.0
    assert figs["p1"]["after"]["time_to_first_alert_s"] == [0.12]
