"""Replay: the live pipeline (same preprocessing, engine, alert filter) over recorded inputs, then metrics."""
from __future__ import annotations

import dataclasses
import json
import logging
import sys
import threading
from pathlib import Path

from engines.errors import Interrupted, SourceError
from stream.config import Config
from stream.detection import Detection
from stream.pipeline import Pipeline
from stream.lab.qa.annotate import AnnotatedVideo
from stream.lab.qa.inputs import ReplayInput, resolve_input
from stream.lab.qa.metrics import compute
from stream.lab.qa.output_dir import check_output_dir, install, make_output_dir, remove_ours
from stream.lab.qa.report import write_report
from stream.wire import encode_detection

log = logging.getLogger(__name__)
STOP = threading.Event()        # set by the command's SIGINT/SIGTERM handler: the replay in flight stops cleanly


def _replay_config(cfg: Config, realtime: bool, fps: float) -> Config:
    capture = dataclasses.replace(cfg.capture, pace=realtime, loop=False, fps=fps)
    publisher = dataclasses.replace(cfg.publisher, endpoint="tcp://127.0.0.1:*", send_frames=False)
    pipeline = dataclasses.replace(cfg.pipeline, detections_log="", max_frames=0, max_seconds=0.0)
    return dataclasses.replace(cfg, capture=capture, publisher=publisher, pipeline=pipeline)


def _progress(name: str, k: int, n: int, done: int, total: int) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    fill = int(width * done / max(total, 1))
    print(f"\r[{k}/{n}] {name[:30]:<30} [{'#' * fill}{'.' * (width - fill)}] {done}/{total}",
          end="\n" if done >= total else "", file=sys.stderr, flush=True)


def replay_one(inp: ReplayInput, out_dir: Path, cfg: Config, realtime: bool, video: bool = True,
               position: tuple[int, int] = (1, 1), extra: dict | None = None) -> dict:
    """Run one input; outputs appear in ``out_dir`` only when complete (a failed or interrupted run leaves none).
    Only the files polypwatch wrote are ever replaced (stream.lab.qa.output_dir)."""
    check_output_dir(out_dir, inputs=[Path(inp.source)])
    tmp = out_dir.with_name(out_dir.name + ".partial")
    remove_ours(tmp)
    make_output_dir(tmp)
    try:
        return _replay_into(inp, tmp, out_dir, cfg, realtime, video, position, extra)
    except BaseException:
        remove_ours(tmp)
        raise


def _replay_into(inp: ReplayInput, tmp: Path, out_dir: Path, cfg: Config, realtime: bool, video: bool,
                 position: tuple[int, int], extra: dict | None) -> dict:
    rcfg = _replay_config(cfg, realtime, inp.fps)
    if rcfg.engine.batch_size > 1 and not realtime:
        from stream.batched import BatchedPipeline
        pipe = BatchedPipeline(rcfg, source=inp.source)
    else:
        pipe = Pipeline(rcfg, source=inp.source)
    pipe.stop_event = STOP
    pipe.sequence_starts = inp.sequence_starts
    overlay_style = cfg.extra["overlay"]
    dets: list[Detection] = []
    jsonl = (tmp / "detections.jsonl").open("w")
    annot = AnnotatedVideo(tmp / "annotated.mp4", inp.fps, inp.truth, overlay_style, block=not realtime) if video else None

    def on_detection(d: Detection, frame) -> None:
        dets.append(d)
        jsonl.write(encode_detection(d)[1].decode() + "\n")
        if annot is not None:
            annot.put(frame.image, d)
        if len(dets) % 25 == 0:
            _progress(inp.name, *position, d.frame_index + 1, inp.frame_count)
    pipe.on_detection = on_detection
    try:
        summary = pipe.run()
    finally:
        jsonl.close()
        if annot is not None:
            annot.close()
    if STOP.is_set():
        raise Interrupted(f"{inp.name}: replay stopped after {len(dets)} of {inp.frame_count} frames; its "
                          f"outputs were not written")
    if not dets:
        raise SourceError(f"{inp.source}: no frame could be decoded (the container announced {inp.frame_count})")
    _progress(inp.name, *position, inp.frame_count, inp.frame_count)
    threshold = pipe.alerts.on
    frames = decoded_frames(inp, summary, realtime)
    m = compute(inp.truth, dets, inp.fps, frames, threshold, inp.sequence_starts)
    m.update(input=inp.source, model_id=pipe.detector.model_id, backend=pipe.detector.backend_name,
             **pipe.detector.precision.record(),
             mode="realtime" if realtime else "every frame", dropped=summary["dropped"] + summary["skipped_by_source"],
             budget_misses=summary["budget_misses"], budget_ms=summary["budget_ms"],
             latency_ms={"capture_to_publish": summary["capture_to"]["publish"], "stage": summary["stage"]},
             annotated_frames=annot.written if annot else 0, annotation_skipped=annot.skipped if annot else 0)
    m["container_frames"] = inp.frame_count
    if summary.get("unreadable_frames"):
        m["unreadable_frames"] = {"count": summary["read_errors"], "first": summary["unreadable_frames"]}
    decoded = summary["read"] + summary["skipped_by_source"]
    if not realtime and decoded != inp.frame_count:
        m["warning"] = (f"the container says {inp.frame_count} frames, {decoded} were decoded: " +
                        ("the figures count the decoded frames" if inp.truth is None else
                         f"the figures are scored against the ground truth's {inp.truth.frame_count}"))
    if summary.get("unreadable_frames"):
        m["warning"] = (m.get("warning", "") + "; " if m.get("warning") else "") + (
            f"{summary['read_errors']} frame(s) could not be read and were skipped (first: "
            f"{summary['unreadable_frames'][0]})")
    m.update(extra or {})
    (tmp / "metrics.json").write_text(json.dumps(m, indent=1))
    write_report(tmp / "report.html", inp, dets, m, threshold)
    install(tmp, out_dir)           # only the files replay wrote are replaced; the user's stay
    return m


def decoded_frames(inp: ReplayInput, summary: dict, realtime: bool) -> int:
    """The frames the input really holds: what the source delivered (every-frame replay decodes them all); a
    container's own count can be wrong (an MPEG-1 file said 167 and held 199). With ground truth the truth's count
    stands (its frames are what the figures are scored against), and in real time what the clock let through is not
    the input's length."""
    if realtime or inp.truth is not None:
        return inp.frame_count
    return summary["read"] + summary["skipped_by_source"]


def replay(inp_path: Path, out: Path, cfg: Config, truth: str | None, realtime: bool, video: bool = True) -> dict:
    """One input: its outputs in ``out`` (several inputs make a study: stream.lab.qa.study_run)."""
    return replay_one(resolve_input(inp_path, truth, cfg.capture.fps), out, cfg, realtime, video)


def format_metrics(m: dict) -> str:
    lines = [f"{m['input']}: {m['frames']} frames, processed {m['processed']}, dropped {m['dropped']}, "
             f"over budget {m['budget_misses']}, mode {m['mode']}, precision {m.get('precision', 'fp32')}"]
    if "frame_raw" in m:
        fr, fa, po, f = m["frame_raw"], m["frame_alert"], m["polyps"], m["false_alarms"]
        lines += [f"  frame (raw score): AUROC {fr['auroc']}, sensitivity {fr['sensitivity']}, specificity {fr['specificity']}",
                  f"  frame (alert):     sensitivity {fa['sensitivity']}, specificity {fa['specificity']}",
                  f"  polyps detected {po['detected']}/{po['count']}; time to first detection median "
                  f"{po['time_to_detection_ms']['median']} ms",
                  f"  false alarms {f['count']} ({f['per_minute']}/min; >=0.5 s: {f['per_minute_ge_0.5s']}/min; "
                  f">=1 s: {f['per_minute_ge_1.0s']}/min); box IoU (TP) median {m['box_iou_true_positive']['median']}"]
    else:
        lines.append(f"  no ground truth: alert episodes {m['alert_episodes']} ({m['alert_episodes_per_minute']}/min)")
    lat = m["latency_ms"]["capture_to_publish"]
    lines.append(f"  capture -> publish ms: p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} max {lat['max']}")
    if m.get("warning"):
        lines.append(f"  WARNING: {m['warning']}")
    return "\n".join(lines)
