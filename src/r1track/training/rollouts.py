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

Rows have the pair dataset's columns (docs/architecture.md), so SFT and GRPO take them unchanged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from r1track.boxes import intersection, iou, is_valid, xywh_to_xyxy
from r1track.crops import Crop
from r1track.datasets.base import Sequence
from r1track.errors import R1TrackError
from r1track.prompts import format_box

if TYPE_CHECKING:
    from r1track.trackers.mllm import MLLMTracker

ABSENT_ANSWER = "[]"


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


@dataclass
class _Run:
    seq: Sequence
    start: int
    tracker: MLLMTracker
    frame: int = 0


def present(seq: Sequence) -> np.ndarray:
    """Per frame: the target is annotated with a proper box and not flagged absent or fully hidden."""
    ok = is_valid(seq.gt[: len(seq)])
    if seq.absent is not None:
        ok &= ~np.asarray(seq.absent[: len(ok)], dtype=bool)
    if seq.visible_ratio is not None:
        ok &= np.asarray(seq.visible_ratio[: len(ok)], dtype=np.float64) != 0
    return ok


def start_frames(seq: Sequence, runs: int, rng: np.random.Generator) -> list[int]:
    """Seeded start frames: frames with the target present and at least one frame after them."""
    ok = present(seq)
    candidates = np.flatnonzero(ok[:-1]) if len(ok) > 1 else np.zeros(0, dtype=np.int64)
    if not len(candidates):
        return []
    return sorted(int(s) for s in rng.choice(candidates, size=min(runs, len(candidates)), replace=False))


def visible_share(box_xywh, crop: Crop) -> float:
    """Share of the box's area inside the crop's square region of the frame."""
    region = np.array([crop.x1, crop.y1, crop.side, crop.side], dtype=np.float64)
    area = box_xywh[2] * box_xywh[3]
    return float(intersection(box_xywh, region) / area) if area > 0 else 0.0


def crop_answer(seq: Sequence, frame: int, crop: Crop, family, min_visible: float) -> list[float]:
    """What the model should answer for ``crop`` of ``frame``: the clipped box in model coordinates, or
    ``[]`` (absent frame, or less than ``min_visible`` of the target inside the crop)."""
    if not present(seq)[frame] or visible_share(seq.gt[frame], crop) < min_visible:
        return []
    xyxy = np.clip(xywh_to_xyxy(crop.to_crop(seq.gt[frame])), 0, crop.size)
    return [float(v) for v in np.trunc(family.encode(xyxy, (crop.size, crop.size))) + 0.0]


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
    (the pair writer's JPEG encoder). ``counts`` receives state statistics: ``states``, ``absent``
    (answer ``[]``), ``drifted`` (IoU of the box the crop was centred on with the truth < 0.5),
    ``lost`` (that IoU = 0).
    """
    options = options or RolloutOptions()
    counts = Counter() if counts is None else counts
    counts.update(dict.fromkeys(("states", "absent", "drifted", "lost"), 0))
    rng = np.random.default_rng([seed, 2])
    waiting = [(seq, s) for seq in sequences for s in start_frames(seq, options.runs_per_sequence, rng)]
    if not waiting:
        raise R1TrackError("no sequence has a frame with the target present to start a rollout from")
    waiting.reverse()
    active: list[_Run] = []
    while active or waiting:
        while len(active) < options.batch_size and waiting:
            seq, s = waiting.pop()
            run = _Run(seq, s, factory(), s)
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
    solution = crop_answer(seq, run.frame, crop, family, options.min_visible)
    counts["states"] += 1
    if not solution:
        counts["absent"] += 1
    if present(seq)[run.frame]:
        overlap = float(iou(before, seq.gt[run.frame]))
        counts["drifted"] += overlap < 0.5
        counts["lost"] += overlap == 0
    template = run.tracker.template_crop
    encode = encode or (lambda rgb: rgb)
    return {
        "prompt": request.messages,
        "completion": [
            {
                "role": "assistant",
                "content": [{"type": "text", "text": (format_box(solution) if solution else ABSENT_ANSWER)}],
            }
        ],
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


def options_dict(options: RolloutOptions) -> dict:
    return asdict(options)
