"""The evaluation runner: tracks every sequence of a split and writes the benchmark's result files.

Follows the got10k toolkit's running rules so numbers match the official ones:
- frame 0 is initialised with the ground-truth box, and that box is written as frame 0's result;
  frame 0's time is the time ``init`` took;
- under the GOT-10k protocol a non-deterministic tracker runs 3 times per sequence (else once);
- a frame's time covers only the tracker call (``init``/``update``): the frame is read first, then the
  call is timed, so slow disks never lower the reported speed.

Fixes what users of the toolkits complain about:
- resumable: a sequence whose results are complete is skipped (``overwrite`` reruns it); results of a
  sequence are written, atomically, only once all its runs have finished, so a killed run never leaves a
  corrupt file and a resumed run ends with the same numbers as an uninterrupted one;
- parallel over sequences (``workers`` > 1, one process each). Per-frame times of parallel runs share
  the CPU/GPU with each other: report speeds from ``workers=1`` runs;
- lockstep batching for MLLM trackers (``batch_size`` > 1, trackers with ``prepare``/``commit``): up to
  ``batch_size`` sequence runs advance together, one frame each per step, with one batched
  ``backend.generate`` call per step. A frame's time in a step is the step's prepare + generate + commit
  wall time divided by the number of requests in the step (the per-frame cost at that throughput).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from r1track import results
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


def _write(tracker_dir: Path, seq: Sequence, protocol: str, runs: list[np.ndarray], times: list[np.ndarray]):
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
    return TrackerError(f"tracker {tracker.name!r} failed on sequence {seq.name!r} frame {frame}: {type(e).__name__}: {e}")


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
    runs, times = [], []
    for _ in range(repetitions):
        b, t = track_sequence(factory(), seq)  # a fresh tracker per run: repetitions are independent
        runs.append(b)
        times.append(t)
    _write(tracker_dir, seq, protocol, runs, times)


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
            raise TrackerError(f"backend failed on a batch of {len(members)} requests ({names}): "
                               f"{type(e).__name__}: {e}") from e
        if len(out) != len(members):
            raise TrackerError(f"backend returned {len(out)} replies for {len(members)} requests")
        for k, reply in zip(members, out):
            replies[k] = reply
    return replies


def track_lockstep(factory: Callable[[], Tracker], sequences: list[Sequence], batch_size: int,
                   repetitions: int = 1, todo: list[int] | None = None,
                   on_sequence: Callable[[int, list[_Job]], None] | None = None) -> None:
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
        requests = []
        for job, image in zip(active, images):
            try:
                requests.append(job.tracker.prepare(image))
            except Exception as e:
                raise _failure(job.tracker, job.seq, job.frame, e) from e
        replies = _generate(active, requests)
        outs = []
        for job, reply in zip(active, replies):
            try:
                outs.append(job.tracker.commit(reply))
            except Exception as e:
                raise _failure(job.tracker, job.seq, job.frame, e) from e
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


def _worker_init(factory, sequences, tracker_dir, protocol, repetitions):
    _WORKER.update(factory=factory, sequences=sequences, tracker_dir=tracker_dir, protocol=protocol, repetitions=repetitions)


def _worker_run(index: int) -> int:
    w = _WORKER
    try:
        _run_sequence(w["factory"], w["sequences"][index], w["tracker_dir"], w["protocol"], w["repetitions"])
    except R1TrackError as e:
        # subclasses with extra constructor arguments (DataError) do not survive pickling: send the message
        raise R1TrackError(str(e)) from None
    return index


def _run_parallel(factory, sequences, todo, tracker_dir, protocol, repetitions, workers, on_done):
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(factory, sequences, tracker_dir, protocol, repetitions),
    )
    try:
        futures = [pool.submit(_worker_run, i) for i in todo]
        for fut in as_completed(futures):
            fut.result()  # re-raises a worker's error here
            on_done()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# --------------------------------------------------------------------------- the runner


def default_repetitions(tracker: Tracker, protocol: str) -> int:
    """3 runs for a non-deterministic tracker under the GOT-10k protocol, else 1 (got10k toolkit rule)."""
    return 3 if protocol == "got10k" and not getattr(tracker, "deterministic", False) else 1


def run(
    factory: Callable[[], Tracker] | argparse.Namespace,
    sequences: list[Sequence] | None = None,
    tracker_dir: str | Path | None = None,
    protocol: str | None = None,
    repetitions: int | None = None,
    workers: int = 1,
    batch_size: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Track ``sequences`` with trackers from ``factory`` and write results under ``tracker_dir``.

    Returns ``{"done": sequences run, "skipped": sequences whose results were complete,
    "repetitions": runs per sequence, "batched": whether lockstep batching was used}``.

    Called with parsed command-line arguments instead (the CLI's ``run(args)`` contract), it runs the
    ``r1track eval`` command and returns its exit status."""
    if isinstance(factory, argparse.Namespace):
        return run_command(factory)  # type: ignore[return-value]
    if sequences is None or tracker_dir is None or protocol is None:
        raise TypeError("run() needs factory, sequences, tracker_dir and protocol")
    if protocol not in PROTOCOLS:
        raise R1TrackError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if workers < 1 or batch_size < 1:
        raise R1TrackError("workers and batch_size must be >= 1")
    probe = factory()  # what kind of tracker: determinism and batching support
    reps = default_repetitions(probe, protocol) if repetitions is None else int(repetitions)
    if reps < 1:
        raise R1TrackError("repetitions must be >= 1")
    if protocol == "ope" and reps != 1:
        raise R1TrackError("the one-pass protocol writes a single run per sequence: use repetitions=1")
    batched = batch_size > 1 and all(hasattr(probe, a) for a in ("prepare", "commit", "backend"))
    if batched and workers > 1:
        raise R1TrackError("use either lockstep batching (batch_size > 1) or workers > 1, not both")
    del probe

    tracker_dir = Path(tracker_dir)
    tracker_dir.mkdir(parents=True, exist_ok=True)
    todo = [i for i, s in enumerate(sequences) if overwrite or not _is_complete(tracker_dir, s, protocol, reps)]
    skipped = len(sequences) - len(todo)
    bar = tqdm(total=len(todo), desc=tracker_dir.name, unit="seq", disable=not progress or not todo)
    try:
        if batched:
            def write(i: int, runs: list[_Job]) -> None:
                _write(tracker_dir, sequences[i], protocol, [j.boxes for j in runs], [j.times for j in runs])
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
    return {"done": len(todo), "skipped": skipped, "repetitions": reps, "batched": batched}


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from r1track import datasets
    from r1track.cli import add_tracker_arguments
    from r1track.datasets import DATASETS
    from r1track.trackers import TRACKERS

    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--root", required=True, type=Path, help="dataset root folder")
    parser.add_argument("--split", default=None, help="dataset split (e.g. val, test)")
    datasets.add_options(parser)
    parser.add_argument("--tracker", required=True, choices=TRACKERS)
    parser.add_argument("--name", default=None, help="results folder name (default: the tracker's name)")
    parser.add_argument("--results", type=Path, default=None, help="results dir (default: runs/<dataset>[_<split>])")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes over sequences")
    parser.add_argument("--repetitions", type=int, default=None, help="runs per sequence (default: toolkit rule)")
    parser.add_argument("--batch-size", type=int, default=1, help="MLLM: sequences advanced together per model call")
    parser.add_argument("--overwrite", action="store_true", help="rerun sequences whose results exist")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sequences")
    parser.add_argument("--sequences", default=None, help="comma-separated sequence names to run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_tracker_arguments(parser.add_argument_group("MLLM tracker"))


def select_sequences(sequences: list[Sequence], names: str | None = None, limit: int | None = None) -> list[Sequence]:
    """Keep the named sequences (in the given order) and/or the first ``limit``; unknown names are an error."""
    if names:
        by_name = {s.name: s for s in sequences}
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise R1TrackError(f"unknown sequence(s): {', '.join(missing)}")
        sequences = [by_name[n] for n in wanted]
    if limit is not None:
        sequences = sequences[: max(limit, 0)]
    return sequences


def default_results_dir(dataset: str, split: str | None) -> Path:
    return Path("runs") / (f"{dataset}_{split}" if split else dataset)


def has_ground_truth(sequences: list[Sequence]) -> bool:
    """True when some frame after the first is annotated (not the case for test splits)."""
    return any(len(s) > 1 and np.isfinite(s.gt[1:]).all(axis=1).any() for s in sequences)


def _folder_name(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name).strip("._")
    return safe or "tracker"


def run_command(args: argparse.Namespace) -> int:
    from r1track import datasets, report
    from r1track.cli import tracker_factory_from_args
    sequences = datasets.load_from_args(args)
    sequences = select_sequences(sequences, args.sequences, args.limit)
    if not sequences:
        raise R1TrackError(f"no sequences to run in {args.root}")
    protocol = datasets.protocol(args.dataset)
    factory = tracker_factory_from_args(args, args.tracker)
    # the default folder is the tracker's own name, so two MLLM checkpoints never share (and wrongly
    # resume from) one folder
    name = args.name or _folder_name(getattr(factory(), "name", args.tracker))
    results_dir = args.results or default_results_dir(args.dataset, args.split)
    counts = run(
        factory,
        sequences,
        results_dir / name,
        protocol,
        repetitions=args.repetitions,
        workers=args.workers,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(
        f"{name}: {counts['done']} sequence(s) run, {counts['skipped']} already complete, "
        f"{counts['repetitions']} run(s) each -> {results_dir / name}",
        file=sys.stderr,
    )
    if args.workers > 1:
        print(f"note: times were measured with {args.workers} processes sharing the machine; "
              "report speeds from a --workers 1 run", file=sys.stderr)
    if has_ground_truth(sequences):
        scores = report.report(sequences, protocol, results_dir, trackers=[name])
        print(report.format_table(scores, protocol))
    return 0

