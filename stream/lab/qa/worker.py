"""The work of one study input, as a worker process or a Ray task runs it."""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from engines.errors import PolypwatchError
from stream.lab.qa.inputs import resolve_input
from stream.lab.qa.replay import replay_one
from stream.lab.qa.study import JobResult, StudyJob

log = logging.getLogger(__name__)


def run_job(job: StudyJob) -> JobResult:
    """Replay one input (in a worker process, a Ray task or in-line); never raises for a bad input."""
    t0 = time.monotonic()
    try:
        inp = resolve_input(Path(job.path), job.truth, job.cfg.capture.fps)
        inp = dataclasses.replace(inp, name=job.name)
        m = replay_one(inp, Path(job.out_dir), job.cfg, job.realtime, job.video, extra={"study_key": job.key})
    except PolypwatchError as e:
        return JobResult(job.name, job.path, "failed", f"{type(e).__name__}: {e}", None, time.monotonic() - t0)
    except Exception as e:  # a crash in one input must not lose the study; it is reported with its type
        log.exception("input %s crashed", job.path)
        return JobResult(job.name, job.path, "failed", f"crash: {type(e).__name__}: {e}", None, time.monotonic() - t0)
    return JobResult(job.name, job.path, "done", "", m, time.monotonic() - t0)
