"""Where a study's inputs run. One small protocol: ``runner.run(jobs)`` yields a ``JobResult`` per job as
each finishes. In-line (serial), worker processes on this machine, or Ray tasks on a cluster."""
from __future__ import annotations

import logging
import multiprocessing
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator, Protocol

from engines.errors import ConfigError
from stream.lab.qa.replay import STOP
from stream.lab.qa.study import JobResult, StudyJob
from stream.lab.qa.worker import run_job

log = logging.getLogger(__name__)


class Runner(Protocol):
    name: str

    def run(self, jobs: list[StudyJob]) -> Iterator[JobResult]: ...


class SerialRunner:
    """One input after another, in this process."""

    name = "serial"

    def run(self, jobs: list[StudyJob]) -> Iterator[JobResult]:
        for job in jobs:
            if STOP.is_set():
                return
            yield run_job(job)


class ProcessRunner:
    """``workers`` processes (spawned: no state shared with this one). A worker that dies (killed, out of
    memory, a crash in native code) costs only the inputs it was running: they are retried once, each alone."""

    name = "processes"

    def __init__(self, workers: int):
        if workers < 1:
            raise ConfigError(f"--workers: expected 1 or more, got {workers}")
        self.workers = workers

    def run(self, jobs: list[StudyJob]) -> Iterator[JobResult]:
        lost = yield from self._pool(jobs, self.workers)
        for job in lost:
            if STOP.is_set():
                return                                   # retry alone: a job that kills its worker fails alone
            again = yield from self._pool([job], 1)
            for j in again:
                yield JobResult(j.name, j.path, "failed", "crash: its worker process died (twice)")

    def _pool(self, jobs: list[StudyJob], workers: int):
        ctx = multiprocessing.get_context("spawn")
        lost: list[StudyJob] = []
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)) or 1, mp_context=ctx,
                                 initializer=_ignore_sigint) as ex:
            pending = {ex.submit(run_job, j): j for j in jobs}
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                if STOP.is_set():                          # Ctrl-C: the workers' inputs in flight are dropped
                    for proc in list(getattr(ex, "_processes", {}).values()):
                        proc.terminate()
                    ex.shutdown(wait=True, cancel_futures=True)
                    return []
                for fut in done:
                    job = pending.pop(fut)
                    try:
                        yield fut.result()
                    except BrokenProcessPool:
                        lost.append(job)
        return lost


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the main process, which stops them (a worker's traceback is no message)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class RayRunner:
    """One Ray task per input, with the resources it needs: ``engine.threads`` CPUs, and one GPU when the
    engine runs on one. ``address``: '' starts or joins a local Ray instance; otherwise the cluster to join.
    Every node must see the inputs and the output folder at the same paths (a shared file system)."""

    name = "ray"

    def __init__(self, address: str = "", num_cpus: int | None = None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("--ray: Ray is not installed; pip install 'polypwatch[cluster]'") from None
        self.address = address
        self.num_cpus = num_cpus

    @staticmethod
    def resources(job: StudyJob) -> dict:
        e = job.cfg.engine
        gpu = e.backend == "tensorrt" or (e.backend == "torch" and e.device.startswith("cuda"))
        return {"num_cpus": max(1, e.threads), "num_gpus": 1 if gpu else 0}

    def run(self, jobs: list[StudyJob]) -> Iterator[JobResult]:
        import ray
        kwargs = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
        if self.address:
            ray.init(address=self.address, **kwargs)
        else:
            ray.init(num_cpus=self.num_cpus, **kwargs)
        try:
            task = ray.remote(run_job)
            refs = {task.options(**self.resources(j)).remote(j): j for j in jobs}
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                if STOP.is_set():
                    for ref in refs:
                        ray.cancel(ref, force=True)
                    return
                if not done:
                    continue
                job = refs.pop(done[0])
                try:
                    yield ray.get(done[0])
                except Exception as e:  # a task whose worker died: the input fails, the study goes on
                    yield JobResult(job.name, job.path, "failed", f"crash: Ray task failed: {type(e).__name__}: {e}")
        finally:
            ray.shutdown()
