"""The evaluation runner: tracks every sequence of a split and writes the benchmark's result files.

Follows the got10k toolkit's running rules so numbers match the official ones:
- frame 0 is initialised with the ground-truth box, and that box is written as frame 0's result;
  frame 0's time is the time ``init`` took;
- under the GOT-10k protocol a non-deterministic tracker runs 3 times per sequence (else once);
- a frame's time covers only the tracker call (``init``/``update``): the frame is read first, then the
  call is timed, so slow disks never lower the reported speed.

Fixes what users of the toolkits complain about:
- resumable: a sequence whose results are complete (parsed, finite, one box per frame) is skipped
  (``overwrite`` reruns it); results of a sequence are written, atomically, only once all its runs
  have finished, so a killed run never leaves a corrupt file and a resumed run ends with the same
  numbers as an uninterrupted one; the folder's run manifest (``r1track.manifest``) must match;
- trackers that ask a model (``unparsable``/``rejected`` counters) get their answer counts written
  per sequence beside the results;
- parallel over sequences (``workers`` > 1, one process each; workers die with the runner, ignore
  Ctrl-C, which stops the runner, and are spawned, not forked, once CUDA is initialised). Per-frame
  times of parallel runs share the CPU/GPU with each other: report speeds from ``workers=1`` runs;
- lockstep batching for MLLM trackers (``batch_size`` > 1, trackers with ``prepare``/``commit``): up to
  ``batch_size`` sequence runs advance together, one frame each per step, with one batched
  ``backend.generate`` call per step. A frame's time in a step is the step's prepare + generate + commit
  wall time divided by the number of requests in the step (the per-frame cost at that throughput).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from r1track import manifest, results
from r1track.datasets.base import Sequence
from r1track.errors import R1TrackError
from r1track.trackers.base import Tracker

PROTOCOLS = ("got10k", "ope")


class TrackerError(R1TrackError):
    """A tracker raised or returned an invalid box; names the sequence and frame."""


# --------------------------------------------------------------------------- result files


def _is_complete(tracker_dir: Path, seq: Sequence, protocol: str, repetitions: int) -> bool:
    if protocol == "got10k":
        return results.is_complete_got10k(tracker_dir, seq.name, len(seq), repetitions)
    return results.is_complete_ope(tracker_dir, seq.name, len(seq))


def _write(
    tracker_dir: Path,
    seq: Sequence,
    protocol: str,
    runs: list[np.ndarray],
    times: list[np.ndarray],
    trackers: list[Any],
):  # MLLM trackers count their answers
    if all(hasattr(t, "unparsable") for t in trackers):  # written first: the results mark completion
        results.write_answers(
            tracker_dir,
            seq.name,
            results.AnswerCounts(
                (len(seq) - 1) * len(trackers),
                sum(t.unparsable for t in trackers),
                sum(t.rejected for t in trackers),
                sum(getattr(t, "absences", 0) for t in trackers),
            ),
        )
    if protocol == "got10k":
        results.write_got10k(tracker_dir, seq.name, runs, times)
    else:
        results.write_ope(tracker_dir, seq.name, runs[0], times[0])


# --------------------------------------------------------------------------- one sequence, one run


def _check_box(box, tracker: Tracker, seq: Sequence, frame: int) -> np.ndarray:
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.isfinite(b).all():
        raise TrackerError(
            f"tracker {tracker.name!r} returned an invalid box {box!r} on sequence {seq.name!r} frame {frame} "
            "(expected 4 finite numbers x, y, w, h)"
        )
    return b


def _failure(tracker: Tracker, seq: Sequence, frame: int, e: Exception) -> TrackerError:
    return TrackerError(
        f"tracker {tracker.name!r} failed on sequence {seq.name!r} frame {frame}: {type(e).__name__}: {e}"
    )


def _init_box(seq: Sequence) -> np.ndarray:
    if len(seq) == 0:
        raise R1TrackError(f"sequence {seq.name!r} has no frames")
    box = np.asarray(seq.init_box, dtype=np.float64)
    if not np.isfinite(box).all():
        raise R1TrackError(f"sequence {seq.name!r} has no initial box (frame 0 ground truth is {box.tolist()})")
    return box


def _start(tracker: Tracker, seq: Sequence, image: np.ndarray) -> float:
    """Give the tracker its ground truth if it asks for it, then init on frame 0; returns the init time."""
    if getattr(tracker, "wants_ground_truth", False):
        tracker.truth = seq.gt
    box = _init_box(seq)
    start = time.perf_counter()
    try:
        tracker.init(image, box.copy())
    except Exception as e:
        raise _failure(tracker, seq, 0, e) from e
    return time.perf_counter() - start


def track_sequence(tracker: Tracker, seq: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """One run over a sequence: (N, 4) boxes with frame 0 = ground truth, and (N,) seconds per frame."""
    n = len(seq)
    boxes, times = np.zeros((n, 4)), np.zeros(n)
    times[0] = _start(tracker, seq, seq.frame(0))
    boxes[0] = seq.init_box
    for i in range(1, n):
        image = seq.frame(i)  # read before timing: speed is the tracker's, not the disk's
        start = time.perf_counter()
        try:
            out = tracker.update(image)
        except Exception as e:
            raise _failure(tracker, seq, i, e) from e
        times[i] = time.perf_counter() - start
        boxes[i] = _check_box(out, tracker, seq, i)
    return boxes, times


def _run_sequence(factory: Callable[[], Tracker], seq: Sequence, tracker_dir: Path, protocol: str, repetitions: int):
    trackers = [factory() for _ in range(repetitions)]  # a fresh tracker per run: repetitions are independent
    runs, times = zip(*(track_sequence(t, seq) for t in trackers))
    _write(tracker_dir, seq, protocol, list(runs), list(times), trackers)


# --------------------------------------------------------------------------- lockstep batching


@dataclass
class _Job:
    """One run of one sequence advancing in lockstep with others."""

    seq_index: int
    rep: int
    seq: Sequence
    tracker: Any  # a Tracker with prepare/commit and a backend (MLLMTracker)
    boxes: np.ndarray
    times: np.ndarray
    frame: int = 1


def _generate(jobs: list[_Job], requests: list) -> list[str]:
    """One ``generate`` call per distinct backend (normally one: the factory shares it), replies in order."""
    groups: dict[int, list[int]] = {}
    for k, job in enumerate(jobs):
        groups.setdefault(id(job.tracker.backend), []).append(k)
    replies: list = [None] * len(jobs)
    for members in groups.values():
        backend = jobs[members[0]].tracker.backend
        try:
            out = backend.generate([requests[k] for k in members])
        except Exception as e:
            names = ", ".join(f"sequence {jobs[k].seq.name!r} frame {jobs[k].frame}" for k in members)
            raise TrackerError(
                f"backend failed on a batch of {len(members)} requests ({names}): {type(e).__name__}: {e}"
            ) from e
        if len(out) != len(members):
            raise TrackerError(f"backend returned {len(out)} replies for {len(members)} requests")
        for k, reply in zip(members, out):
            replies[k] = reply
    return replies


def _call_each(jobs: list[_Job], method: str, values: list) -> list:
    """``job.tracker.<method>(value)`` for each job; a failure names the sequence and frame."""
    out = []
    for job, value in zip(jobs, values):
        try:
            out.append(getattr(job.tracker, method)(value))
        except Exception as e:
            raise _failure(job.tracker, job.seq, job.frame, e) from e
    return out


def track_lockstep(
    factory: Callable[[], Tracker],
    sequences: list[Sequence],
    batch_size: int,
    repetitions: int = 1,
    todo: list[int] | None = None,
    on_sequence: Callable[[int, list[_Job]], None] | None = None,
) -> None:
    """Up to ``batch_size`` sequence runs advance together, one frame each per step, with one batched
    ``generate`` call per step; ``on_sequence(index, runs)`` gets each sequence's runs (``_Job``: boxes,
    times, tracker, in repetition order) once all are done. Trackers need ``prepare``/``commit``."""
    todo = list(range(len(sequences))) if todo is None else todo
    waiting = deque((i, r) for i in todo for r in range(repetitions))
    pending: dict[int, dict[int, _Job]] = {i: {} for i in todo}  # sequence -> rep -> finished run
    active: list[_Job] = []

    def finish(job: _Job):
        runs = pending[job.seq_index]
        runs[job.rep] = job
        if len(runs) == repetitions:  # all runs of the sequence are in: hand them over at once
            del pending[job.seq_index]
            if on_sequence is not None:
                on_sequence(job.seq_index, [runs[r] for r in range(repetitions)])

    while active or waiting:
        # refill: a finished sequence run is replaced by the next waiting one
        while len(active) < batch_size and waiting:
            i, r = waiting.popleft()
            seq = sequences[i]
            n = len(seq)
            job = _Job(i, r, seq, factory(), np.zeros((n, 4)), np.zeros(n))
            job.times[0] = _start(job.tracker, seq, seq.frame(0))
            job.boxes[0] = seq.init_box
            if n == 1:
                finish(job)
            else:
                active.append(job)
        if not active:
            continue
        images = [job.seq.frame(job.frame) for job in active]  # read before timing
        start = time.perf_counter()
        requests = _call_each(active, "prepare", images)
        outs = _call_each(active, "commit", _generate(active, requests))
        per_frame = (time.perf_counter() - start) / len(requests)
        still = []
        for job, out in zip(active, outs):
            job.boxes[job.frame] = _check_box(out, job.tracker, job.seq, job.frame)
            job.times[job.frame] = per_frame
            job.frame += 1
            if job.frame == len(job.seq):
                finish(job)
            else:
                still.append(job)
        active = still


# --------------------------------------------------------------------------- process pool

# The worker's context, inherited through fork (so factories need not be picklable) or sent once
# through the pool initializer; never set in the parent process.
_WORKER: dict = {}


def _worker_init(parent: int, factory, sequences, tracker_dir, protocol, repetitions):
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the runner decides
    _WORKER.update(
        factory=factory, sequences=sequences, tracker_dir=tracker_dir, protocol=protocol, repetitions=repetitions
    )


def _die_with(parent: int) -> None:
    """End this worker when the runner dies, even by SIGKILL (no orphan keeps writing results)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the runner died before the line above took effect
        os._exit(1)


def _worker_run(index: int) -> int:
    w = _WORKER
    try:
        _run_sequence(w["factory"], w["sequences"][index], w["tracker_dir"], w["protocol"], w["repetitions"])
    except R1TrackError as e:
        # subclasses with extra constructor arguments (DataError) do not survive pickling: send the message
        raise R1TrackError(str(e)) from None
    return index


def start_method(factory) -> str | None:
    """fork where available (factories need not pickle), but spawn once CUDA is initialised here (a
    forked CUDA context is unusable) or when the factory asks for it (``factory.spawn``: it loads a
    model in each process)."""
    torch = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_initialized()
    if cuda or getattr(factory, "spawn", False) or "fork" not in multiprocessing.get_all_start_methods():
        return "spawn"
    return "fork"


def _run_parallel(factory, sequences, todo, tracker_dir, protocol, repetitions, workers, on_done):
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(start_method(factory)),
        initializer=_worker_init,
        initargs=(os.getpid(), factory, sequences, tracker_dir, protocol, repetitions),
    )
    try:
        futures = [pool.submit(_worker_run, i) for i in todo]
        for fut in as_completed(futures):
            fut.result()  # re-raises a worker's error here
            on_done()
    except BaseException:
        # stop now, not after the running sequences (a model's can take minutes); their results are
        # written atomically, so the killed ones simply rerun on resume
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# --------------------------------------------------------------------------- the runner


def default_repetitions(tracker: Tracker, protocol: str) -> int:
    """3 runs for a non-deterministic tracker under the GOT-10k protocol, else 1 (got10k toolkit rule)."""
    return 3 if protocol == "got10k" and not getattr(tracker, "deterministic", False) else 1


@dataclass
class RunSummary:
    """What ``run`` did: sequences run and skipped (complete), runs per sequence, lockstep batching."""

    done: int
    skipped: int
    repetitions: int
    batched: bool


def run(
    factory: Callable[[], Tracker],
    sequences: list[Sequence],
    tracker_dir: str | Path,
    protocol: str,
    *,
    repetitions: int | None = None,
    workers: int = 1,
    batch_size: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> RunSummary:
    """Track ``sequences`` with fresh trackers from ``factory`` and write results under ``tracker_dir``.

    ``repetitions``: runs per sequence (default: the toolkit's rule); ``workers``: processes over
    sequences; ``batch_size``: sequences advanced in lockstep with one model call per step (MLLM
    trackers); ``overwrite``: rerun complete sequences (and replace another run's folder)."""
    if protocol not in PROTOCOLS:
        raise R1TrackError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if workers < 1 or batch_size < 1:
        raise R1TrackError("workers and batch_size must be >= 1")
    results.check_names(s.name for s in sequences)
    probe = factory()  # what kind of tracker: determinism, batching support, the manifest
    reps = default_repetitions(probe, protocol) if repetitions is None else int(repetitions)
    if reps < 1:
        raise R1TrackError("repetitions must be >= 1")
    if protocol == "ope" and reps != 1:
        raise R1TrackError("the one-pass protocol writes a single run per sequence: use repetitions=1")
    batched = batch_size > 1 and all(hasattr(probe, a) for a in ("prepare", "commit", "backend"))
    if batched and workers > 1:
        raise R1TrackError("use either lockstep batching (batch_size > 1) or workers > 1, not both")
    tracker_dir = Path(tracker_dir)
    manifest.claim(tracker_dir, manifest.describe(probe), overwrite)
    del probe

    todo = [i for i, s in enumerate(sequences) if overwrite or not _is_complete(tracker_dir, s, protocol, reps)]
    bar = tqdm(total=len(todo), desc=tracker_dir.name, unit="seq", disable=not progress or not todo)
    try:
        if batched:

            def write(i: int, runs: list[_Job]) -> None:
                _write(
                    tracker_dir,
                    sequences[i],
                    protocol,
                    [j.boxes for j in runs],
                    [j.times for j in runs],
                    [j.tracker for j in runs],
                )
                bar.update()

            track_lockstep(factory, sequences, batch_size, reps, todo, write)
        elif workers > 1 and len(todo) > 1:
            _run_parallel(factory, sequences, todo, tracker_dir, protocol, reps, workers, lambda: bar.update())
        else:
            for i in todo:
                _run_sequence(factory, sequences[i], tracker_dir, protocol, reps)
                bar.update()
    finally:
        bar.close()
    return RunSummary(len(todo), len(sequences) - len(todo), reps, batched)
