"""Archive-scale QA: a study of generated clips (mixed lengths, a corrupt file, a truncated one) run serially,
in worker processes and under a real local Ray instance; resumable, idempotent, failures reported."""
import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_cli

VOLATILE = {"latency_ms", "budget_misses", "annotated_frames", "annotation_skipped", "input"}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """5 good clips of 1-3 s (one as MJPG/AVI), a corrupt file, and an AVI cut in half (truncated)."""
    from engines.synthetic.clip import write_clip
    from engines.synthetic.params import SynthParams
    root = tmp_path_factory.mktemp("archive")
    for k, (secs, codec) in enumerate([(1, "mp4v"), (2, "mp4v"), (1, "mjpg"), (3, "mp4v"), (1, "mp4v")]):
        ext = ".avi" if codec == "mjpg" else ".mp4"
        write_clip(SynthParams(seed=40 + k, seconds=secs, width=160, height=120, fps=25), root / f"p{k}{ext}", codec)
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 20)
    write_clip(SynthParams(seed=50, seconds=2, width=160, height=120, fps=25), root / "cut.avi", "mjpg")
    data = (root / "cut.avi").read_bytes()
    (root / "cut.avi").write_bytes(data[: len(data) * 6 // 10])
    return root


def study(archive, out, model, *extra, timeout=600):
    return run_cli("replay", str(archive), "--out", str(out), "--no-video", "--set", f"engine.model={model}",
                   "--set", "engine.threads=1", *extra, timeout=timeout)


def per_input(out):
    s = json.loads((out / "summary.json").read_text())
    metrics = {}
    for r in s["inputs"]:
        if r["status"] != "failed":
            m = json.loads((out / r["input"] / "metrics.json").read_text())
            metrics[r["input"]] = {k: v for k, v in m.items() if k not in VOLATILE}
    return s, metrics


@pytest.fixture(scope="module")
def serial(archive, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    r = study(archive, out, tiny_model, "--workers", "1")
    return out, r


def test_study_writes_one_folder_per_input_and_reports_failures(serial):
    out, r = serial
    assert r.returncode == 1, r.stderr[-2000:]                  # some inputs failed: exit status says so
    assert "1 of 7 inputs failed" in r.stdout
    s, metrics = per_input(out)
    status = {x["input"]: x["status"] for x in s["inputs"]}
    assert status == {"broken": "failed", "cut": "done", "p0": "done", "p1": "done", "p2": "done", "p3": "done",
                      "p4": "done"}
    broken = next(x for x in s["inputs"] if x["input"] == "broken")
    assert "cannot be opened" in broken["error"]
    assert s["ended_early"] == ["cut"] and metrics["cut"]["processed"] < metrics["cut"]["frames"]
    assert [metrics[f"p{k}"]["frames"] for k in range(5)] == [25, 50, 25, 75, 25]
    for name in ("p0", "p3"):
        assert (out / name / "report.html").is_file() and (out / name / "detections.jsonl").is_file()
    assert s["counts"] == {"done": 6, "skipped": 0, "failed": 1}
    assert s["pooled"]["polyps"] == sum(m["polyps"]["count"] for m in metrics.values())
    page = (out / "report.html").read_text()
    assert "sortBy" in page and "p3/report.html" in page and "broken" in page
    assert "| broken | failed |" in (out / "summary.md").read_text()
    assert not list(out.glob("*.partial"))


def test_workers_give_the_serial_results(serial, archive, tiny_model, tmp_path):
    out = tmp_path / "two"
    r = study(archive, out, tiny_model, "--workers", "2")
    assert r.returncode == 1, r.stderr[-2000:]
    assert per_input(out)[1] == per_input(serial[0])[1]
    assert json.loads((out / "summary.json").read_text())["study"]["runner"] == "processes"


def test_a_finished_study_is_skipped_and_a_changed_input_redone(serial, archive, tiny_model, tmp_path):
    import shutil
    out = tmp_path / "again"
    shutil.copytree(serial[0], out)
    t0 = time.monotonic()
    r = study(archive, out, tiny_model, "--workers", "1")
    s = json.loads((out / "summary.json").read_text())
    assert r.returncode == 1 and s["counts"] == {"done": 0, "skipped": 6, "failed": 1}
    assert time.monotonic() - t0 < 30
    shutil.rmtree(out / "p1")
    r = study(archive, out, tiny_model, "--workers", "1", "--set", "alerts.window=4")   # other config: all redone
    s = json.loads((out / "summary.json").read_text())
    assert s["counts"] == {"done": 6, "skipped": 0, "failed": 1}
    r = study(archive, out, tiny_model, "--workers", "1", "--set", "alerts.window=4")
    assert json.loads((out / "summary.json").read_text())["counts"]["skipped"] == 6


def test_a_killed_study_loses_only_the_input_in_flight(archive, tiny_model, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "stream", "replay", str(archive), "--out", str(out), "--no-video", "--workers", "1",
           "--set", f"engine.model={tiny_model}", "--set", "engine.threads=1", "--set", "capture.fps=25"]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "p0" / "metrics.json").is_file():
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    finished = {d.name for d in out.iterdir() if (d / "metrics.json").is_file()}
    assert "p0" in finished and len(finished) < 6
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    s = json.loads((out / "summary.json").read_text())
    status = {x["input"]: x["status"] for x in s["inputs"]}
    assert all(status[n] == "skipped" for n in finished) and status["broken"] == "failed"
    assert sum(v == "done" for v in status.values()) == 6 - len(finished)
    assert not list(out.glob("*.partial")) and r.returncode == 1


def test_ray_gives_the_serial_results(serial, archive, tiny_model, tmp_path):
    pytest.importorskip("ray", reason="Ray is the [cluster] extra; the README's test set-up installs it")
    out = tmp_path / "ray"
    r = study(archive, out, tiny_model, "--ray", timeout=900)
    assert r.returncode == 1, r.stderr[-3000:]
    assert per_input(out)[1] == per_input(serial[0])[1]
    s = json.loads((out / "summary.json").read_text())
    assert s["study"]["runner"] == "ray" and s["counts"]["failed"] == 1


def test_list_files_globs_and_refusals(archive, tiny_model, tmp_path):
    from stream.lab.qa.inputs import expand_inputs
    lst = tmp_path / "inputs.txt"
    lst.write_text(f"# two procedures\n{archive / 'p0.mp4'}\n\n{archive / 'p2.avi'}\n")
    assert expand_inputs([str(lst)]) == ([archive / "p0.mp4", archive / "p2.avi"], True)
    paths, is_study = expand_inputs([str(archive / "p*.mp4")])
    assert [p.name for p in paths] == ["p0.mp4", "p1.mp4", "p3.mp4", "p4.mp4"] and is_study
    assert expand_inputs([str(archive / "p0.mp4")]) == ([archive / "p0.mp4"], False)
    r = run_cli("replay", str(archive), "--out", str(tmp_path / "x"), "--ray", "--workers", "2")
    assert r.returncode == 2 and "--ray and --workers: choose one" in r.stderr
    r = run_cli("replay", str(tmp_path / "nothing*.mp4"), "--out", str(tmp_path / "y"))
    assert r.returncode == 3 and "matches no video" in r.stderr


@pytest.mark.parametrize("k, n, lo, hi", [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (26, 26, 0.8713, 1.0),
                                          (5, 10, 0.2366, 0.7634)])
def test_wilson_interval(k, n, lo, hi):
    from engines.lab.evaluation.metrics import wilson
    assert wilson(k, n) == pytest.approx((lo, hi), abs=1e-4)
    assert wilson(0, 0) is None


def test_pooled_metrics_sum_counts_not_rates():
    from stream.lab.qa.study import JobResult
    from stream.lab.qa.study_report import pooled
    def res(name, detected, count, tp, fn, tn, fp, fas, secs):
        m = {"polyps": {"count": count, "detected": detected}, "frame_alert": {"tp": tp, "fn": fn, "tn": tn, "fp": fp},
             "false_alarms": {"count": fas}, "duration_s": secs}
        return JobResult(name, name, "done", "", m)
    p = pooled([res("a", 1, 2, 90, 10, 0, 0, 0, 60), res("b", 3, 3, 10, 90, 100, 0, 2, 60),
                JobResult("c", "c", "failed", "x")])
    assert (p["polyps"], p["polyps_detected"], p["polyp_detection_rate"]) == (5, 4, 0.8)
    assert p["frame_sensitivity_alert"] == 0.5 and p["frame_specificity_alert"] == 1.0
    assert p["false_alarms_per_min"] == 1.0 and p["inputs_with_truth"] == 2
