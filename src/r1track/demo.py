"""`r1track demo`: the embedded default, fully offline.

Generates a small held-out synthetic benchmark, runs the weight-free baselines (static box, KCF, CSRT and
the ground-truth oracle as bounds) and the packaged nano R1-Track model on it, prints the AO table and
writes plots and a JSON report; then tracks one clip (the model's median-AO sequence) with the MLLM tracker
twice -- from the first-frame box and from the clip's text description -- writing annotated videos and
printing each AO.

Everything lives under ``--out``: the benchmark is generated once, the runs resume, so a second call only
prints the scores again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from r1track import datasets, evaluation, report, synth
from r1track.errors import R1TrackError
from r1track.metrics import got10k_iou
from r1track.trackers import tracker_factory

BASELINES = ("static", "kcf", "csrt", "oracle")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="working folder (default runs/demo)")
    parser.add_argument("--sequences", type=int, default=8, help="synthetic sequences to generate")
    parser.add_argument("--frames", type=int, default=60, help="frames per sequence")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the held-out synthetic split")
    parser.add_argument(
        "--model",
        default=None,
        help="MLLM checkpoint to demo (default: the packaged nano R1-Track model; 'none' skips it)",
    )
    parser.add_argument("--trackers", default=",".join(BASELINES), help="baselines to run, comma-separated")


def _model_path(choice: str | None) -> str | None:
    if choice == "none":
        return None
    if choice:
        return choice
    from r1track.nano import default_model_path

    try:
        return str(default_model_path())
    except R1TrackError:  # an install without the trained checkpoint
        return None


def _clip_ao(seq, boxes: np.ndarray) -> float:
    ious = got10k_iou(boxes[1:], seq.gt[1:], seq.meta["resolution"])
    return float(np.mean(ious[seq.meta["cover"][1:] > 0]))


def _track_clip(seq, make, out: Path) -> None:
    from r1track.video import write_annotated

    for how, init in (("box", {"box": seq.gt[0]}), ("text", {"text": seq.language})):
        start = f'"{seq.language}"' if how == "text" else "the first-frame box"
        try:
            boxes = make().track(seq.iter_frames(), **init)
        except R1TrackError as e:  # a model that cannot ground the description: say so, keep the rest
            print(f"{seq.name} from {start}: {e}")
            continue
        video = out / f"clip-{how}.mp4"
        write_annotated(seq.iter_frames(), boxes, video, fps=15, overwrite=True)
        print(f"{seq.name} tracked from {start}: AO {_clip_ao(seq, boxes):.3f} -> {video}")


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    data = out / f"synth-seed{args.seed}-{args.sequences}x{args.frames}"
    if not (data / "val" / "list.txt").is_file():
        synth.generate(data, args.sequences, args.frames, args.seed, split="val")
    sequences = datasets.load("got10k", data, "val")
    results = out / "results"
    names = [n.strip() for n in args.trackers.split(",") if n.strip()]
    for name in names:
        evaluation.run(tracker_factory(name), sequences, results / name, "got10k")
    model = _model_path(args.model)
    if model:
        make = tracker_factory(model, device="cpu")  # one CPU model shared, the checkpoint's settings
        name = make().name  # r1track-<checkpoint folder>: another model never resumes these results
        evaluation.run(make, sequences, results / name, "got10k", batch_size=len(sequences))
        names.append(name)
    elif args.model != "none":
        print("no packaged nano model in this install: skipping the MLLM tracker (pass --model PATH to demo one)")
    scores = report.report(sequences, "got10k", results, trackers=names)
    print(report.format_table(scores, "got10k"))
    plots = report.plot_curves(scores, "got10k", out / "plots")
    report.write_json(scores, out / "scores.json")
    print(f"plots: {', '.join(str(p) for p in plots)}; scores: {out / 'scores.json'}")
    if model:
        _track_clip(_median_clip(sequences, scores[name]["sequences"]), make, out)
    return 0


def _median_clip(sequences, per_sequence: dict):
    """The sequence of median AO for the model: a typical clip, neither its best nor its worst."""
    ranked = sorted(sequences, key=lambda s: per_sequence[s.name]["ao"])
    return ranked[len(ranked) // 2]
