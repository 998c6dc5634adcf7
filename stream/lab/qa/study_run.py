"""Running a study (see stream.lab.qa.study): plan, refuse bad inputs up front, run the rest through a runner,
write the study summary."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from engines.errors import Interrupted, PolypwatchError, TruthError
from stream.config import Config
from stream.lab.qa.inputs import resolve_input
from stream.lab.qa.output_dir import is_ours, make_output_dir, remove_ours
from stream.lab.qa.progress import StudyProgress
from stream.lab.qa.replay import STOP
from stream.lab.qa.runners import Runner, SerialRunner
from stream.lab.qa.study import JobResult, config_digest, plan, unique_names
from stream.lab.qa.study_report import write_study

log = logging.getLogger(__name__)


def run_study(inputs: list[Path], out: Path, cfg: Config, truth: str | None, realtime: bool, video: bool,
              runner: Runner | None = None) -> list[JobResult]:
    """Every input through ``runner`` (default: in-line); resumable; a failed input is reported, not fatal."""
    if truth and len(inputs) > 1:
        raise TruthError("--truth names one file; with several inputs, put each video's truth beside it")
    runner = runner or SerialRunner()
    make_output_dir(out, kind="study")
    _remove_partials(out)                               # what a killed run left half-written
    jobs, skipped = plan(inputs, out, cfg, truth, realtime, video)
    ready, failed, frames = [], [], {}
    for job in jobs:                                   # open each input once here: bad ones fail before any work
        try:
            frames[job.name] = resolve_input(Path(job.path), job.truth, cfg.capture.fps).frame_count
            ready.append(job)
        except PolypwatchError as e:
            failed.append(JobResult(job.name, job.path, "failed", f"{type(e).__name__}: {e}"))
    log.info("study of %d inputs: %d finished earlier, %d to run (%s), %d refused", len(inputs), len(skipped),
             len(ready), runner.name, len(failed))
    results = {r.name: r for r in skipped + failed}
    t0 = time.monotonic()
    with StudyProgress(out, sum(frames.values()), len(ready)) as progress:
        for r in runner.run(ready):
            results[r.name] = r
            progress.finished(frames.get(r.name, 0), r.status == "failed")
            if r.status == "failed":
                log.warning("%s failed: %s", r.path, r.error)
    interrupted = STOP.is_set()
    if interrupted:
        _remove_partials(out)
        for job in ready:
            if job.name not in results or results[job.name].status == "failed" and "Interrupted" in results[job.name].error:
                results[job.name] = JobResult(job.name, job.path, "interrupted", "stopped by the user (SIGINT/SIGTERM)")
    ordered = [results[n] for n in unique_names(inputs) if n in results]
    meta = {"inputs": len(inputs), "runner": runner.name, "seconds": round(time.monotonic() - t0, 2),
            "frames_run": sum(frames.get(r.name, 0) for r in ordered if r.status == "done"),
            "model_id": next((r.metrics.get("model_id") for r in ordered if r.metrics), None),
            "precision": sorted({r.metrics["precision"] for r in ordered if r.metrics and r.metrics.get("precision")}),
            **config_digest(cfg, realtime, video)}
    write_study(out, ordered, meta | {"interrupted": interrupted})
    if interrupted:
        done = sum(r.status in ("done", "skipped") for r in ordered)
        raise Interrupted(f"study stopped by the user: {done} of {len(ordered)} inputs finished and kept in {out} "
                          f"(summary.json lists the rest as interrupted); run the same command again to resume")
    return ordered


def _remove_partials(out: Path) -> None:
    for stale in out.glob("*.partial"):
        if is_ours(stale):
            remove_ours(stale)
        else:
            log.warning("%s: not written by polypwatch (no marker); left as it is", stale)
