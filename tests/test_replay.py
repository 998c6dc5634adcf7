"""Replay end to end on generated clips and frame folders, and its refusals."""
import json

import cv2
import numpy as np
import pytest
from conftest import run_cli


def test_replay_of_a_generated_clip_writes_every_output(clip, tiny_model, tmp_path):
    out = tmp_path / "qa"
    r = run_cli("replay", str(clip), "--out", str(out), "--set", f"engine.model={tiny_model}")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    lines = (out / "detections.jsonl").read_text().splitlines()
    assert len(lines) == m["processed"] == m["frames"] == 120 and m["dropped"] == 0
    assert [json.loads(x)["frame_index"] for x in lines] == list(range(120))
    truth = json.loads(clip.with_suffix(".json").read_text())
    assert m["polyps"]["count"] == len(truth["polyps"])
    assert m["frame_raw"]["positives"] == sum(1 for f in truth["frames"] if f)
    for key in ("frame_alert", "false_alarms", "box_iou_true_positive", "latency_ms"):
        assert key in m
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 120
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 and "http" not in page.replace("http-equiv", "")
    assert "Polyps detected" in page


def test_replay_without_truth_and_realtime(clip, tiny_model, tmp_path):
    bare = tmp_path / "bare.mp4"
    bare.write_bytes(clip.read_bytes())
    r = run_cli("replay", str(bare), "--out", str(tmp_path / "o"), "--realtime", "--no-video",
                "--set", f"engine.model={tiny_model}")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert "polyps" not in m and "alert_episodes" in m and m["mode"] == "realtime"
    assert m["processed"] + m["dropped"] == 120
    assert "no ground truth" in r.stdout


def test_replay_of_a_frame_folder_with_masks_and_several_inputs(tiny_model, tmp_path, clip):
    root = tmp_path / "cvc"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(1, 13):
        img = np.full((120, 160, 3), 90, np.uint8)
        cv2.circle(img, (80, 60), 55, (120, 130, 200), -1)
        cv2.imwrite(str(root / "images" / f"{i}.png"), img)
        m = np.zeros((120, 160), np.uint8)
        if 4 <= i <= 8:
            m[40:70, 60:100] = 255
        cv2.imwrite(str(root / "masks" / f"{i}.png"), m)
    r = run_cli("replay", str(root), str(clip), "--out", str(tmp_path / "many"), "--no-video",
                "--set", f"engine.model={tiny_model}")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "many" / "cvc" / "metrics.json").read_text())
    assert m["frames"] == 12 and m["frame_raw"]["positives"] == 5 and m["polyps"]["count"] == 1
    rows = json.loads((tmp_path / "many" / "summary.json").read_text())["inputs"]
    assert [r["input"] for r in rows] == ["cvc", "clip"] and {r["status"] for r in rows} == {"done"}
    assert "| input | status |" in (tmp_path / "many" / "summary.md").read_text()


@pytest.mark.parametrize("make, message", [
    (lambda p, c: str(p / "missing.mp4"), "not found"),
    (lambda p, c: (p.joinpath("x.mp4").write_bytes(b"not a video" * 50), str(p / "x.mp4"))[1], "not an image or a video"),
    (lambda p, c: (p.joinpath("t.json").write_text("{broken"), "--truth", str(p / "t.json"), str(c))[1:],
     "not valid JSON"),
])
def test_bad_inputs_fail_clearly_and_leave_no_report(tmp_path, clip, tiny_model, make, message):
    args = make(tmp_path, clip)
    args = [args] if isinstance(args, str) else list(args)
    r = run_cli("replay", *args, "--out", str(tmp_path / "o"), "--set", f"engine.model={tiny_model}")
    assert r.returncode != 0 and message in r.stderr
    assert not (tmp_path / "o" / "report.html").exists() and not (tmp_path / "o" / "metrics.json").exists()


def test_truth_for_a_different_frame_count_is_refused(tmp_path, clip, tiny_model):
    t = json.loads(clip.with_suffix(".json").read_text())
    t["frame_count"] = 60
    t["frames"] = t["frames"][:60]
    (tmp_path / "short.json").write_text(json.dumps(t))
    r = run_cli("replay", str(clip), "--truth", str(tmp_path / "short.json"), "--out", str(tmp_path / "o"),
                "--set", f"engine.model={tiny_model}")
    assert r.returncode == 2
    assert "ground truth has 60 frames, the input" in r.stderr and "has 120" in r.stderr
    assert not (tmp_path / "o").exists()


def test_batched_replay_gives_the_same_detections_as_unbatched(clip, shipped_model, tmp_path):
    """engine.batch_size=4 (decode thread, preprocessing pool, one backend call per 4 frames) against the unbatched
    replay: same frames in the same order, same alerts, scores within float noise, same metrics."""
    import json

    from conftest import run_cli
    outs = {}
    for b in (1, 4):
        out = tmp_path / f"b{b}"
        r = run_cli("replay", str(clip), "--out", str(out), "--no-video", "--set", f"engine.model={shipped_model}",
                    "--set", f"engine.batch_size={b}", "--set", "preprocess.active_area_every=7")
        assert r.returncode == 0, r.stderr[-2000:]
        outs[b] = ([json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()],
                   json.loads((out / "metrics.json").read_text()))
    (d1, m1), (d4, m4) = outs[1], outs[4]
    assert len(d1) == len(d4) == 120
    assert [d["frame_index"] for d in d4] == [d["frame_index"] for d in d1] == list(range(120))
    assert [d["alert"] for d in d4] == [d["alert"] for d in d1]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(d1, d4)) < 1e-4
    assert [len(d["boxes"]) for d in d4] == [len(d["boxes"]) for d in d1]
    assert m4["frame_raw"] == m1["frame_raw"] and m4.get("polyps") == m1.get("polyps")


def test_replay_counts_the_frames_it_decoded_not_the_containers_claim(tiny_model, tmp_path):
    """A file whose header promises more frames than it holds (here an MJPG AVI cut in half: 60 said, 30 there;
    an MPEG-1 file once said 167 and held 199): the header line and metrics.json give the decoded count."""
    path = tmp_path / "cut.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(60):
        w.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    w.release()
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    said = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))
    r = run_cli("replay", str(path), "--out", str(tmp_path / "o"), "--no-video", "--set", f"engine.model={tiny_model}")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert said == m["container_frames"] == 60
    assert 0 < m["frames"] == m["processed"] < 60
    assert m["warning"].startswith(f"the container says 60 frames, {m['frames']} were decoded")
    assert f"{m['frames']} frames, processed {m['processed']}" in r.stdout


def test_the_report_shows_one_gallery_entry_per_alert_episode(tmp_path):
    """The procedure record's gallery for a recording: the shipped model on a clip with a polyp."""
    from engines.synthetic.clip import write_clip
    from engines.synthetic.params import SynthParams
    clip = tmp_path / "polyp.mp4"
    write_clip(SynthParams(seed=1, seconds=6, width=480, height=360, fps=25), clip)
    r = run_cli("replay", str(clip), "--out", str(tmp_path / "qa"), "--no-video", "--set", "engine.threads=1")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "qa" / "metrics.json").read_text())
    page = (tmp_path / "qa" / "report.html").read_text()
    dets = [json.loads(x) for x in (tmp_path / "qa" / "detections.jsonl").read_text().splitlines()]
    assert m["alert_episodes"] >= 1 and page.count('<figure class="episode">') == m["alert_episodes"]
    for fig in page.split('<figure class="episode">')[1:]:
        caption = fig.split("<figcaption>")[1].split("</figcaption>")[0]
        peak = int(caption.split("at frame ")[1].split(" ")[0])
        assert dets[peak]["alert"] == "on" and dets[peak]["boxes"] and "polyp in view" in caption
