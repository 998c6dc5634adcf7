"""A study: replay over many recorded procedures, resumable, in parallel on one machine or on a Ray cluster.

Each input gets ``OUT/<name>/`` (metrics.json, detections.jsonl, report.html, annotated.mp4), written to
``OUT/<name>.partial/`` and moved in place only when complete. Its metrics.json records a ``study_key``: a hash
of the model file, the configuration that shapes results, the replay mode and the input file itself. Running
the same study again skips every input whose key matches (a finished study is near-instant) and redoes the
rest; a crash, a corrupt video or a kill loses only the input in flight. ``OUT/summary.json`` lists every
input with its status (``done``, ``skipped`` = finished earlier, ``failed`` with its error) and whether it
ended early; ``summary.md`` and a study ``report.html`` sit beside it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from engines.backends.engine_sidecar import sha256_file
from stream.config import Config

log = logging.getLogger(__name__)
STUDY_VERSION = 1


@dataclass(frozen=True)
class StudyJob:
    """One input of a study: everything a worker (process or Ray task) needs, nothing live."""

    path: str
    name: str
    out_dir: str
    cfg: Config
    truth: str | None
    realtime: bool
    video: bool
    key: str


@dataclass(frozen=True)
class JobResult:
    name: str
    path: str
    status: str                    # done | skipped | failed
    error: str = ""
    metrics: dict | None = None
    seconds: float = 0.0


def config_digest(cfg: Config, realtime: bool, video: bool) -> dict:
    """What shapes a replay's results: preprocessing, engine, alerts, capture fps, the replay mode."""
    from engines.backends import resolve_backend_name
    from engines.runtime.model_files import resolve_model_path
    from engines.runtime.precision import choose_precision
    # the file that will run: with engine.precision auto, another CPU may run the INT8 twin instead
    model = choose_precision(resolve_model_path(cfg.engine.model), cfg.engine.precision,
                             resolve_backend_name(cfg.engine.backend, cfg.engine.engine_file)).model_path
    engine = dataclasses.asdict(cfg.engine) | {"model": str(model)}
    shaping = {"preprocess": dataclasses.asdict(cfg.preprocess), "engine": engine,
               "alerts": dataclasses.asdict(cfg.alerts), "capture_fps": cfg.capture.fps,
               "realtime": realtime, "video": video, "study_version": STUDY_VERSION}
    text = json.dumps(shaping, sort_keys=True, default=str)
    model_sha = sha256_file(model) if model.is_file() else "missing"
    return {"model_sha256": model_sha, "config_sha256": hashlib.sha256(text.encode()).hexdigest()}


def input_key(path: Path, truth: str | None, digest: dict) -> str:
    """The study key of one input: model, configuration, and the input (its path, size and modification time;
    for a frame folder, the same of every file in it) and its truth file."""
    h = hashlib.sha256(json.dumps(digest, sort_keys=True).encode())
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    tp = Path(truth) if truth else path.with_suffix(".json")
    if tp.is_file() and not path.is_dir():
        files.append(tp)
    for p in files:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def unique_names(paths: list[Path]) -> list[str]:
    """Output folder names: the input's name without extension, ``-2``, ``-3`` ... where two collide."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        base = p.stem if p.is_file() else p.name
        k = seen.get(base, 0) + 1
        seen[base] = k
        out.append(base if k == 1 else f"{base}-{k}")
    return out


def finished(out_dir: Path, key: str) -> dict | None:
    """The metrics of a finished input with this key, or None."""
    try:
        m = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return m if m.get("study_key") == key else None


def plan(paths: list[Path], out: Path, cfg: Config, truth: str | None, realtime: bool, video: bool,
         ) -> tuple[list[StudyJob], list[JobResult]]:
    """(jobs still to run, inputs finished earlier with the same key)."""
    digest = config_digest(cfg, realtime, video)
    jobs, skipped = [], []
    for path, name in zip(paths, unique_names(paths)):
        out_dir = out / name
        key = input_key(path, truth, digest) if path.exists() else f"missing:{path}"
        m = finished(out_dir, key)
        if m is not None:
            skipped.append(JobResult(name, str(path), "skipped", "", m))
        else:
            jobs.append(StudyJob(str(path), name, str(out_dir), cfg, truth, realtime, video, key))
    return jobs, skipped


def default_workers(cfg: Config) -> int:
    """As many workers as the cores allow at the engine's threads each (one at least)."""
    threads = max(1, cfg.engine.threads)
    return max(1, (os.cpu_count() or 1) // threads)
