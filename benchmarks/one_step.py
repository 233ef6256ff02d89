"""A tracker's error without drift: one step from the true previous box, and again from its own answer.

    PYTHONPATH=src .venv/bin/python benchmarks/one_step.py --model PATH [--factors 3 4 5] [--passes 3]

On the training sequences of ``scripts/reproduce_nano.py`` (the real ones without the held-out part, and
the training MOT video's identities; about 12 frames per sequence), the tracker's state is set to the
true box of the previous frame, as after a perfect answer, and the frame is tracked once per search
factor: mean IoU, share of "absent" answers, median width and height of the answer over the truth's.
``--passes N`` then asks again N - 1 times on the same frame, each search crop centred on the previous
answer (default factor): an answer that is right on average stays put; a bias (a box too wide, a centre
pulled one way) grows pass after pass, as it does frame after frame on a target that hardly moves.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from reproduce_nano import training_sequences  # noqa: E402

from r1track.boxes import iou  # noqa: E402
from r1track.errors import exit_status  # noqa: E402
from r1track.trackers.mllm import factory  # noqa: E402

FRAMES_PER_SEQUENCE = 12


def steps(seqs) -> list[tuple]:
    """(sequence, frame index) pairs whose frame and previous frame both have a box."""
    out = []
    for seq in seqs:
        for i in range(1, len(seq), max(1, len(seq) // FRAMES_PER_SEQUENCE)):
            if np.isfinite(seq.gt[i]).all() and np.isfinite(seq.gt[i - 1]).all():
                out.append((seq, i))
    return out


def one_pass(trackers, frames, truths, batch: int = 40) -> str:
    """Every tracker answers its frame once (batched); the statistics of the answers as one table cell."""
    requests = [t.prepare(f) for t, f in zip(trackers, frames)]
    replies = []
    for k in range(0, len(requests), batch):
        replies += trackers[0].backend.generate(requests[k : k + batch])
    before = [t.absences for t in trackers]
    boxes = np.array([t.commit(r) for t, r in zip(trackers, replies)])
    for t in trackers:
        t.frame_index -= 1  # the same frame again on the next pass
    absent = np.mean([t.absences > b for t, b in zip(trackers, before)])
    ratio = np.median(boxes[:, 2:] / truths[:, 2:], axis=0)
    return f"{iou(boxes, truths).mean():.3f} / {absent:.2f} / {ratio[0]:.2f} x {ratio[1]:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--factors", type=float, nargs="+", default=[2.5, 3, 3.5, 4, 5, 6])
    parser.add_argument("--passes", type=int, default=3, help="answers per frame at the default factor")
    args = parser.parse_args(argv)
    sets = training_sequences()
    columns = [f"factor {f:g}" for f in args.factors] + [f"pass {k + 1}" for k in range(args.passes)]
    print("cells: mean IoU / absent answers / median width x height over the truth's")
    print("| set | steps | " + " | ".join(columns) + " |")
    print("| --- " * (2 + len(columns)) + "|")
    make = factory(args.model, device="cpu", max_new_tokens=24)  # one model; each tracker sets its factor
    # (tracker options, answers per frame): each factor once, then the checkpoint's factor `passes` times
    runs = [({"search_factor": f}, 1) for f in args.factors] + [({}, args.passes)]
    for name, seqs in sets.items():
        todo = steps(seqs)
        frames = [seq.frame(i) for seq, i in todo]
        truths = np.array([seq.gt[i] for seq, i in todo])
        cells = []
        for options, passes in runs:
            trackers = []
            for seq, i in todo:
                t = make(**options)
                t.init(seq.frame(0), seq.gt[0])
                t.box = seq.gt[i - 1].astype(np.float64)
                trackers.append(t)
            cells += [one_pass(trackers, frames, truths) for _ in range(passes)]
        print(f"| {name} | {len(todo)} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main, "one_step.py"))
