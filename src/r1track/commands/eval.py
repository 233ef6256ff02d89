"""Command `r1track eval`: arguments -> ``r1track.evaluation.run`` -> a summary and the scores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from r1track import datasets, evaluation, report, results
from r1track.cli import add_tracker_arguments, tracker_factory_from_args
from r1track.errors import R1TrackError

# a <think> paragraph and an <answer> need this many new tokens (the reference allows 1024)
THINKING_MIN_NEW_TOKENS = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from r1track.trackers import TRACKERS

    parser.add_argument("--dataset", required=True, choices=datasets.DATASETS)
    parser.add_argument("--root", required=True, type=Path, help="dataset root folder")
    parser.add_argument("--split", default=None, help="dataset split (e.g. val, test)")
    datasets.add_options(parser)
    parser.add_argument("--tracker", required=True, choices=TRACKERS)
    parser.add_argument(
        "--name", default=None, help="results folder name (default: the tracker's name as typed; mllm: the model's)"
    )
    parser.add_argument("--results", type=Path, default=None, help="results dir (default: runs/<dataset>[_<split>])")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes over sequences")
    parser.add_argument("--repetitions", type=int, default=None, help="runs per sequence (default: toolkit rule)")
    parser.add_argument("--batch-size", type=int, default=1, help="MLLM: sequences advanced together per model call")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="rerun sequences whose results exist (and replace another run's folder)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N sequences")
    parser.add_argument("--sequences", default=None, help="comma-separated sequence names to run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_tracker_arguments(parser.add_argument_group("MLLM tracker"))


def default_results_dir(dataset: str, split: str | None) -> Path:
    return Path("runs") / (f"{dataset}_{split}" if split else dataset)


def has_ground_truth(sequences: list) -> bool:
    """True when some frame after the first is annotated (not the case for test splits)."""
    return any(len(s) > 1 and np.isfinite(s.gt[1:]).all(axis=1).any() for s in sequences)


class InEachProcess:
    """A picklable factory that builds the tracker factory from the command's arguments once per
    process, so spawned workers load their own model instead of inheriting a CUDA context."""

    spawn = True  # evaluation.start_method: never fork a process holding a model

    def __init__(self, name: str, args: argparse.Namespace):
        self.name, self.args, self._factory = name, args, None

    def __getstate__(self):
        return {"name": self.name, "args": self.args, "_factory": None}

    def __call__(self):
        if self._factory is None:
            self._factory = tracker_factory_from_args(self.args, self.name)
        return self._factory()


def _warn_thinking_budget(tracker) -> None:
    budget = getattr(getattr(tracker, "backend", None), "max_new_tokens", None)
    if getattr(tracker, "thinking", False) and budget is not None and budget < THINKING_MIN_NEW_TOKENS:
        print(
            f"warning: --thinking with --max-new-tokens {budget}: a thought and an answer need about "
            f"{THINKING_MIN_NEW_TOKENS} or more, cut replies hold no box",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    sequences = datasets.select(datasets.load_from_args(args), args.sequences, args.limit)
    if not sequences:
        raise R1TrackError(f"no sequences to run in {args.root}")
    protocol = datasets.protocol(args.dataset)
    mllm_workers = args.tracker == "mllm" and args.workers > 1
    factory = InEachProcess(args.tracker, args) if mllm_workers else tracker_factory_from_args(args, args.tracker)
    probe = factory()
    _warn_thinking_budget(probe)
    # the name typed is the folder's, so `report --trackers csrt` finds `eval --tracker csrt`; an MLLM
    # tracker's is its model's (with a fingerprint), so two checkpoints never share a folder
    name = args.name or (probe.name if args.tracker == "mllm" else args.tracker)
    results.check_names([name], "results folder name")
    results_dir = args.results or default_results_dir(args.dataset, args.split)
    try:
        summary = evaluation.run(
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
    except KeyboardInterrupt:
        print(
            f"r1track eval: interrupted; finished sequences are kept in {results_dir / name}: "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print(
        f"{name}: {summary.done} sequence(s) run, {summary.skipped} already complete, "
        f"{summary.repetitions} run(s) each -> {results_dir / name}",
        file=sys.stderr,
    )
    if args.workers > 1:
        print(
            f"note: times were measured with {args.workers} processes sharing the machine; "
            "report speeds from a --workers 1 run",
            file=sys.stderr,
        )
    answers = report.answer_summary(sequences, results_dir / name)
    if has_ground_truth(sequences):
        scores = report.report(sequences, protocol, results_dir, trackers=[name])
        print(report.format_table(scores, protocol))
    report.print_answers({name: answers})
    return 0
