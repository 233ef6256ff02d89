"""Closed-loop training pairs: the search crops a policy's own tracking loop produces.

GT-jittered pairs (``training.pairs``) show the model crops centred near the target. In tracking, the
next crop is centred where the model's previous answer put it, so after one error the model sees crops
it never trained on: drifted, too large or too small, or without the target. Rollout pairs are those
states. The policy tracks each training sequence from seeded start frames exactly as ``r1track eval``
would (same tracker, crops, prompts and parser, lockstep batched); every search crop it built becomes a
sample, with the ground truth of that frame mapped into the crop:

- target present and at least ``min_visible`` of its area inside the crop: the box in crop coordinates,
  clipped to the crop, encoded by the model family (what a jittered pair would say for that crop);
- otherwise (absent frame, or the target outside the crop): the answer ``[]``, which the rewards score
  as right only there (``rewards.is_absent``) and the tracker acts on (``MLLMTracker.absent_search_scale``).

``write_rollout_pairs`` writes them, optionally mixed with GT-jittered pairs of the same sequences, as
a pair dataset (``r1track build-pairs --from-rollouts MODEL``).

Rows have the pair dataset's columns (docs/architecture.md), so SFT and GRPO take them unchanged.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
from tqdm import tqdm

from r1track.boxes import iou
from r1track.crops import Crop
from r1track.datasets.base import Sequence
from r1track.errors import R1TrackError
from r1track.prompts import format_answer
from r1track.training.pairs import (
    PairOptions,
    assistant_message,
    crop_box,
    dropped,
    encode_image,
    iter_samples,
    plan_pairs,
    present_frames,
    write_rows,
)

if TYPE_CHECKING:
    from r1track.trackers.mllm import MLLMTracker


@dataclass(frozen=True)
class RolloutOptions:
    runs_per_sequence: int = 2  # tracking runs per sequence, each from its own seeded start frame
    max_frames: int = 60  # frames tracked after the start frame
    min_visible: float = 0.25  # least share of the target's area inside the crop for a box answer
    batch_size: int = 16  # runs advanced together per model call

    def __post_init__(self):
        if self.runs_per_sequence < 1 or self.max_frames < 1 or self.batch_size < 1:
            raise R1TrackError("rollout runs, frames and batch size must be at least 1")
        if not 0 < self.min_visible <= 1:
            raise R1TrackError(f"min_visible must be in (0, 1], got {self.min_visible}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Run:
    seq: Sequence
    present: np.ndarray  # present_frames(seq), computed once per run
    start: int
    tracker: MLLMTracker
    frame: int = 0


def start_frames(present: np.ndarray, runs: int, rng: np.random.Generator) -> list[int]:
    """Seeded start frames: frames with the target present and at least one frame after them."""
    candidates = np.flatnonzero(present[:-1]) if len(present) > 1 else np.zeros(0, dtype=np.int64)
    if not len(candidates):
        return []
    return sorted(int(s) for s in rng.choice(candidates, size=min(runs, len(candidates)), replace=False))


def crop_answer(seq: Sequence, frame: int, crop: Crop, family, min_visible: float, present=None) -> list[float]:
    """What the model should answer for ``crop`` of ``frame``: the clipped box in model coordinates (as
    a jittered pair writes it), or ``[]`` (absent frame, or less than ``min_visible`` of the target
    inside the crop). ``present``: ``present_frames(seq)`` when the caller has it."""
    present = present_frames(seq) if present is None else present
    if not present[frame] or crop.visible_share(seq.gt[frame]) < min_visible:
        return []
    return crop_box(seq.gt[frame], crop, family, clip=True)


def rollout_rows(
    factory: Callable[[], MLLMTracker],
    sequences: list[Sequence],
    seed: int,
    options: RolloutOptions | None = None,
    encode=None,
    counts: Counter | None = None,
) -> Iterator[dict]:
    """Pair rows from the policy's tracking runs (see the module docstring), in a deterministic order.

    ``factory`` makes MLLM trackers sharing one backend; ``encode(rgb) -> image cell`` stores images
    (the pair writer's JPEG encoder; default: the arrays themselves). ``counts`` receives state
    statistics: ``states``, ``absent`` (answer ``[]``), ``drifted`` (IoU of the box the crop was centred
    on with the truth < 0.5), ``lost`` (that IoU = 0).
    """
    options = options or RolloutOptions()
    encode = encode or (lambda rgb: rgb)
    counts = Counter() if counts is None else counts
    counts.update(dict.fromkeys(("states", "absent", "drifted", "lost"), 0))
    rng = np.random.default_rng([seed, 2])
    waiting = []
    for seq in sequences:
        present = present_frames(seq)
        waiting += [(seq, present, s) for s in start_frames(present, options.runs_per_sequence, rng)]
    if not waiting:
        raise R1TrackError("no sequence has a frame with the target present to start a rollout from")
    waiting.reverse()
    active: list[_Run] = []
    while active or waiting:
        while len(active) < options.batch_size and waiting:
            seq, present, s = waiting.pop()
            run = _Run(seq, present, s, factory(), s)
            if run.tracker.wants_ground_truth:  # diagnostic backends (the oracle), as the runner does
                run.tracker.truth = seq.gt[s:]
            run.tracker.init(seq.frame(s), box=seq.gt[s])
            active.append(run)
        requests, states = [], []
        for run in active:
            run.frame += 1
            before = run.tracker.box.copy()
            requests.append(run.tracker.prepare(run.seq.frame(run.frame)))
            states.append((before, run.tracker.search_crop))
        replies = active[0].tracker.backend.generate(requests)
        for run, request, (before, crop), reply in zip(active, requests, states, replies):
            run.tracker.commit(reply)
            yield _row(run, request, crop, before, options, encode, counts)
        active = [r for r in active if r.frame < min(len(r.seq) - 1, r.start + options.max_frames)]


def _row(run: _Run, request, crop: Crop, before: np.ndarray, options: RolloutOptions, encode, counts) -> dict:
    seq, family = run.seq, run.tracker.family
    solution = crop_answer(seq, run.frame, crop, family, options.min_visible, run.present)
    counts["states"] += 1
    if not solution:
        counts["absent"] += 1
    if run.present[run.frame]:
        overlap = float(iou(before, seq.gt[run.frame]))
        counts["drifted"] += overlap < 0.5
        counts["lost"] += overlap == 0
    template = run.tracker.template_crop
    return {
        "prompt": request.messages,
        "completion": assistant_message(format_answer(solution)),
        "images": [encode(image) for image in request.images],
        "solution": solution,
        "task": "track",
        "image_size": [crop.size, crop.size],
        "family": family.name,
        "sequence": seq.name,
        "frame_ids": [run.start, run.frame],
        "crops": [list(map(float, template.as_list())), list(map(float, crop.as_list()))],
        "frame_boxes": [seq.gt[run.start].tolist(), seq.gt[run.frame].tolist()],
    }


def write_rollout_pairs(
    sequences: list[Sequence],
    factory,
    out: str | Path,
    seed: int = 0,
    rollout: RolloutOptions | None = None,
    options: PairOptions | None = None,
    jittered_rate: float = 0.0,
    overwrite: bool = False,
    progress: bool = True,
    source: dict | None = None,
) -> dict:
    """Rollout pairs from the trackers ``factory`` makes, then GT-jittered pairs (``options``) of the same
    sequences, ``jittered_rate`` of the total, written by ``pairs.write_rows``; returns the info."""
    if not 0 <= jittered_rate < 1:
        raise R1TrackError(f"jittered_rate must be in [0, 1), got {jittered_rate}")
    options = options or PairOptions()
    rollout = rollout or RolloutOptions()
    states: Counter = Counter()
    sequences = [seq for seq in sequences if not dropped(seq, options)]  # as the jittered pairs leave them out

    def rows():
        encode = functools.partial(encode_image, fmt=options.image_format)
        bar = tqdm(desc="rollout states", unit="state", disable=not progress)
        for row in rollout_rows(factory, sequences, seed, rollout, encode, states):
            bar.update(1)
            yield row
        bar.close()
        jittered = round(states["states"] * jittered_rate / (1 - jittered_rate))
        if jittered:
            yield from iter_samples(plan_pairs(sequences, seed, options), jittered, progress=progress)

    info = {
        "source": source or {},
        "seed": int(seed),
        "options": options.to_dict(),
        "rollout": rollout.to_dict(),
        "jittered_rate": jittered_rate,
        "states": states,
    }
    return write_rows(rows(), out, info, overwrite)
