"""Track one video or frame folder: ``r1track track INPUT (--box x,y,w,h | --text ...) --model M --out F``,
or one sequence of a dataset from its first ground-truth box: ``r1track track --dataset mot --root R
--sequence PETS09-S2L1-3 --model M --out F``.

The command of ``Tracker.track`` (Python: ``r1track.load_tracker(model).track(frames, box=...)``): the
first row of the boxes is the initial box (given, or found from ``text`` by the tracker's grounding request).
``track_video`` is the whole command once the tracker is built (track, write the boxes file and the annotated
video); the web app (``r1track app``) runs the same function.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from tqdm.auto import tqdm

from r1track.atomic import atomic_write_text
from r1track.boxes import is_valid
from r1track.crops import clip_box
from r1track.datasets.base import read_image
from r1track.errors import DataError, R1TrackError
from r1track.results import format_boxes
from r1track.trackers.base import Tracker
from r1track.video import write_annotated


def track_timed(frames, tracker: Tracker, box=None, text: str | None = None, progress: bool = False):
    """``Tracker.track`` plus the seconds each frame took in the tracker (frame 0: init), decoding excluded."""
    if box is None and not text:
        raise R1TrackError("give an initial box or a text description of the target")
    frames = open_input(frames)
    it = iter(tqdm(frames, total=_length(frames), unit="frame", disable=not progress))
    try:
        first = next(it)
    except StopIteration:
        raise R1TrackError("no frames to track") from None
    start = time.perf_counter()
    tracker.init(first, box=None if box is None else np.asarray(box, dtype=np.float64), text=text)
    times = [time.perf_counter() - start]
    found = getattr(tracker, "box", None)
    boxes = [np.asarray(found if found is not None else box, dtype=np.float64).copy()]
    for frame in it:
        start = time.perf_counter()
        boxes.append(np.asarray(tracker.update(frame), dtype=np.float64).reshape(4))
        times.append(time.perf_counter() - start)
    return np.stack(boxes), np.asarray(times)


def open_input(frames) -> Iterable[np.ndarray]:
    """A video file or frame folder (str or Path) as lazily decoded frames; other iterables unchanged."""
    if not isinstance(frames, (str, os.PathLike)):
        return frames
    from r1track.datasets.folder import open_frames

    files, _ = open_frames(Path(frames))
    if len(files) == 0:
        raise DataError(Path(frames), "holds no frames")
    return iter_frames(files)


def _length(frames) -> int | None:
    return len(frames) if hasattr(frames, "__len__") else None


def iter_frames(frames, limit: int | None = None) -> Iterator[np.ndarray]:
    """Frames as arrays from a list of arrays or image paths, or a lazily decoded video (the first
    ``limit`` only, when given)."""
    for i in range(len(frames) if limit is None else min(limit, len(frames))):
        f = frames[i]
        yield f if isinstance(f, np.ndarray) else read_image(f)


def track_video(
    frames,
    tracker: Tracker,
    box=None,
    text: str | None = None,
    *,
    boxes_out=None,
    video_out=None,
    fps: float | None = None,
    overwrite: bool = False,
    max_frames: int | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """What ``r1track track`` does with a built tracker: track the first ``max_frames`` (default all) of
    ``frames`` (a sized, indexable sequence: frame files, a ``VideoFrames``, arrays), write the boxes file
    and, if ``video_out``, the annotated video (``fps`` default: the source's, else 30). ``on_frame(i, n)``
    is called before frame ``i`` of ``n`` is tracked. Returns ``track_timed``'s boxes and times."""
    n = len(frames) if max_frames is None else min(max_frames, len(frames))

    def reported():
        for i, frame in enumerate(iter_frames(frames, n)):
            if on_frame is not None:
                on_frame(i, n)
            yield frame

    boxes, times = track_timed(reported(), tracker, box=box, text=text)
    if boxes_out is not None:
        write_boxes(boxes_out, boxes, overwrite=overwrite)
    if video_out is not None:
        fps = fps or getattr(frames, "fps", None) or 30.0
        write_annotated(iter_frames(frames, n), boxes, video_out, fps=fps, overwrite=overwrite)
    return boxes, times


def write_boxes(path: str | Path, boxes: np.ndarray, overwrite: bool = False) -> Path:
    """``x,y,w,h`` per line with 3 decimals, written to a temporary file then renamed."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError(path, "exists already (pass --overwrite to replace it)")
    atomic_write_text(path, format_boxes(np.asarray(boxes).reshape(-1, 4)))
    return path


def parse_box_arg(text: str) -> np.ndarray:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not np.isfinite(values).all() or values[2] <= 0 or values[3] <= 0:
        raise R1TrackError(f"--box must be x,y,w,h (4 finite numbers, w and h > 0), got {text!r}")
    return np.asarray(values)


def check_box_in_frame(box: np.ndarray, size: tuple[int, int]) -> None:
    """A user's initial box must cover part of the first frame (W, H); it may reach past its edges."""
    if not is_valid(clip_box(box, size)):
        raise R1TrackError(
            f"--box {','.join(f'{v:g}' for v in box)} lies outside the first frame "
            f"({size[0]}x{size[1]} pixels; x,y is the top-left corner, 0-based)"
        )


def _dataset_sequence(args: argparse.Namespace):
    """Frames, resolution (W, H) and first ground-truth box of ``--sequence`` in ``--dataset``."""
    from r1track import datasets

    if args.root is None or not args.sequence:
        raise R1TrackError("--dataset needs --root and --sequence")
    sequences = {s.name: s for s in datasets.load_from_args(args)}
    if args.sequence not in sequences:
        names = list(sequences)
        raise R1TrackError(
            f"no sequence {args.sequence!r} in {args.root} ({len(names)} sequences: "
            f"{', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
        )
    seq = sequences[args.sequence]
    size = seq.meta.get("resolution") or seq.frame(0).shape[1::-1]
    return seq.frames, tuple(size), seq.gt[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from r1track import datasets
    from r1track.cli import add_tracker_arguments

    parser.add_argument("input", type=Path, nargs="?", help="a video file or a folder of frames")
    source = parser.add_argument_group("or one sequence of a dataset (its frames, from its first box)")
    source.add_argument("--dataset", default=None, choices=datasets.DATASETS, help="dataset reader")
    source.add_argument("--root", type=Path, default=None, help="dataset root folder")
    source.add_argument("--split", default=None, help="dataset split")
    source.add_argument("--sequence", default=None, help="sequence name (e.g. PETS09-S2L1-3)")
    datasets.add_options(source)
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--box", help="initial box in the first frame: x,y,w,h (pixels)")
    start.add_argument("--text", help="describe the target; the model finds it in the first frame")
    parser.add_argument("--out", type=Path, required=True, help="boxes file to write (x,y,w,h per line)")
    parser.add_argument("--video", type=Path, default=None, help="also write an annotated video (.mp4)")
    parser.add_argument("--fps", type=float, default=None, help="annotated video frame rate (default: source)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_tracker_arguments(parser.add_argument_group("MLLM tracker"))


def run(args: argparse.Namespace) -> int:
    from r1track.cli import tracker_factory_from_args
    from r1track.datasets.folder import open_frames

    box = parse_box_arg(args.box) if args.box else None
    for out in (args.out, args.video):  # before loading a model, not after tracking
        if out is not None and Path(out).exists() and not args.overwrite:
            raise DataError(out, "exists already (pass --overwrite to replace it)")
    if (args.input is None) == (args.dataset is None):
        raise R1TrackError("give a video or frame folder, or --dataset, --root and --sequence")
    if args.dataset is not None:
        frames, size, first_box = _dataset_sequence(args)
        box = first_box if box is None and not args.text else box
    else:
        frames, size = open_frames(args.input)
    if len(frames) == 0:
        raise DataError(args.input, "holds no frames")
    if box is None and not args.text:
        raise R1TrackError("give the target's first box (--box x,y,w,h) or describe it (--text ...)")
    if box is not None:
        check_box_in_frame(box, size)
    tracker = tracker_factory_from_args(args)()
    try:
        boxes, times = track_video(
            frames,
            tracker,
            box,
            args.text,
            boxes_out=args.out,
            video_out=args.video,
            fps=args.fps,
            overwrite=args.overwrite,
        )
    finally:
        tracker.backend.close()
    print(f"{summary(boxes, times, tracker)} -> {args.out}")
    if args.video is not None:
        print(f"annotated video -> {args.video}")
    return 0


def summary(boxes: np.ndarray, times: np.ndarray, tracker: Tracker) -> str:
    """``N frames, S frames/s, F failed answer(s)``: the tracked speed excludes initialisation."""
    n = len(boxes)
    speed = (n - 1) / times[1:].sum() if n > 1 and times[1:].sum() > 0 else float("nan")
    return f"{n} frames, {speed:.2f} frames/s, {getattr(tracker, 'failures', 0)} failed answer(s)"
