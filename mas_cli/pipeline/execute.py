"""Running the pipeline's jobs: in this process (`pipeline.jobs=1`, live step bars), or in worker
processes (`pipeline.jobs=N`, each with its share of the threads and its own log file)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from mas_cli import console as console_module
from mas_cli import memory
from mas_cli.alignment.job import align
from mas_cli.correlative.run import similarity
from mas_cli.errors import MasError
from mas_cli.memory import release_free_heap
from mas_cli.pipeline.plan import Job
from mas_cli.training import train_model


@dataclass
class Outcome:
    stage: str
    label: str
    wall_s: float
    error: str | None = None  # a refusal (e.g. an undertrained model), the job's one-line message
    trained_to_criterion: bool | None = None  # train jobs
    rows: pd.DataFrame | None = None  # align jobs: the iia.csv rows
    similarity: pd.DataFrame | None = None  # similarity jobs: the similarity.csv rows
    run_dir: str | None = None


def run_job(stage: str, label: str, config: dict, threads: int, log: str | None = None) -> Outcome:
    """One job, from a plain (picklable) config. Bad input inside a job becomes its error, so the
    other jobs still run; anything else is a bug and propagates."""
    if log is not None:  # a worker process: the job's console output goes to its log file
        console_module.console.file = open_log(Path(log))
        memory.tune_this_process()  # a process of mas's own, as the command that started it
    threads_before = torch.get_num_threads()  # in this process (log None): put back afterwards
    torch.set_num_threads(threads)
    cfg = OmegaConf.create({**config, "threads": threads})  # each result's config.yaml says what ran
    start = time.perf_counter()
    try:
        if stage == "train":
            result = train_model(cfg)
            ok = bool(result.metrics["trained_to_criterion"])
            return Outcome(stage, label, time.perf_counter() - start, trained_to_criterion=ok)
        if stage == "similarity":
            rows = similarity(cfg)  # before the clock is read: arguments are evaluated in order
            return Outcome(stage, label, time.perf_counter() - start, similarity=rows)
        result = align(cfg)
        return Outcome(stage, label, time.perf_counter() - start, rows=result.rows, run_dir=str(result.run_dir))
    except MasError as exc:
        return Outcome(stage, label, time.perf_counter() - start, error=str(exc))
    finally:
        release_free_heap()  # the next job starts from what this one holds, not what it freed
        if log is not None:
            console_module.console.file.close()
        else:
            torch.set_num_threads(threads_before)


def open_log(path: Path):
    """A job's log file, made anew: an old log (or a link planted in its place) is removed, never
    written through, and the new file is created exclusively, not following links."""
    path.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, 0o666), "w")


def _plain(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def _log_name(job: Job) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in f"{job.stage}-{job.label}") + ".log"


def run_jobs(
    jobs: list[Job], workers: int, threads: int, log_dir: Path, finished: Callable[[Outcome], None]
) -> list[Outcome]:
    """Run the jobs, calling `finished` with each outcome as it arrives."""
    outcomes = []
    if workers == 1 or len(jobs) <= 1:  # nothing to share out (a resumed stage may have no job left)
        for job in jobs:
            outcomes.append(run_job(job.stage, job.label, _plain(job.config), threads))
            finished(outcomes[-1])
        return outcomes
    log_dir.mkdir(parents=True, exist_ok=True)  # a real folder: paths.root's folders are checked up front
    per_job = max(1, threads // workers)  # never more threads in total than asked for
    # spawn, not fork: torch's thread pools do not survive a fork
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context, initializer=_leave_ctrl_c)
    try:
        futures = [
            pool.submit(run_job, job.stage, job.label, _plain(job.config), per_job, str(log_dir / _log_name(job)))
            for job in jobs
        ]
        for future in as_completed(futures):
            outcomes.append(future.result())
            finished(outcomes[-1])
    except KeyboardInterrupt:  # stop the workers now: what they finished is kept, the rest resumes
        workers_running = list((getattr(pool, "_processes", None) or {}).values())  # no public way before 3.14
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers_running:
            process.terminate()
        raise
    pool.shutdown()
    return outcomes


def _leave_ctrl_c() -> None:
    """A worker ignores Ctrl-C (the terminal sends it to every process of the group): the main
    process decides, and stops the workers itself, so no worker prints a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
