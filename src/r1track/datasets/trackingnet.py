"""TrackingNet reader: chunk folders ``TRAIN_0`` .. ``TRAIN_11`` and ``TEST``.

Each chunk holds ``anno/<seq>.txt`` (``x,y,w,h``; TEST has the first line only) and
``frames/<seq>/<i>.jpg`` with 0-based unpadded numbers, sorted numerically (0, 1, ..., 10).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from r1track.datasets.base import Sequence, check_ground_truth, image_size, list_frames, natural_key, read_boxes
from r1track.errors import DataError, R1TrackError


def load(root: str | Path, split: str | None = None) -> list[Sequence]:
    """Sequences of the chosen chunks, chunk by chunk, sorted by name within a chunk.

    ``root`` holds chunk folders (``split`` "test" -> ``TEST``, "train" -> every ``TRAIN_*``, or a
    chunk name such as "TRAIN_3"; default "test" when ``TEST`` is there, else "train"), or is a
    single chunk folder (it has ``anno/`` and ``frames/``).
    """
    root = Path(root)
    if _is_chunk(root):
        chunks = [root]
        split = split or ("test" if root.name.upper() == "TEST" else "train")
    else:
        present = (
            sorted((d for d in root.iterdir() if _is_chunk(d)), key=lambda d: natural_key(d.name.upper()))
            if root.is_dir()
            else []
        )
        if not present:
            raise DataError(
                root,
                "not a TrackingNet root: expected TRAIN_0..TRAIN_11 and/or TEST folders "
                "(or one of them) holding anno/ and frames/",
            )
        names = {d.name.upper(): d for d in present}
        split = split or ("test" if "TEST" in names else "train")
        if split.lower() == "test":
            chunks = [names["TEST"]] if "TEST" in names else []
        elif split.lower() == "train":
            chunks = [d for d in present if d.name.upper().startswith("TRAIN_")]
        elif split.upper() in names:
            chunks = [names[split.upper()]]
        else:
            raise R1TrackError(
                f"unknown TrackingNet split {split!r}: use test, train or a chunk name ({', '.join(names)})"
            )
        if not chunks:
            raise DataError(root, f"no chunk folder for split {split!r} (found {', '.join(names)})")
    split = split.lower()
    return [seq for chunk in chunks for seq in _chunk(chunk, split)]


def _is_chunk(folder: Path) -> bool:
    return (folder / "anno").is_dir() and (folder / "frames").is_dir()


def _chunk(chunk: Path, split: str) -> list[Sequence]:
    annos = sorted((chunk / "anno").glob("*.txt"), key=lambda p: natural_key(p.stem))
    return [_sequence(chunk, anno, split) for anno in annos]


def _sequence(chunk: Path, anno: Path, split: str) -> Sequence:
    frames_dir = chunk / "frames" / anno.stem
    if not frames_dir.is_dir():
        raise DataError(frames_dir, f"frame folder for {anno} is missing")
    frames = list_frames(frames_dir)
    n = len(frames)
    if n == 0:
        raise DataError(frames_dir, "no frame files (0.jpg, 1.jpg, ...)")
    gt = read_boxes(anno)
    if len(gt) != n:
        if len(gt) == 1 and chunk.name.upper() == "TEST":  # the test set gives the first box only
            gt = np.vstack([gt, np.full((n - 1, 4), np.nan)])
        else:
            raise DataError(anno, f"{len(gt)} boxes for {n} frames in {frames_dir}")
    check_ground_truth(anno, gt)
    meta = {"dataset": "trackingnet", "split": split, "resolution": image_size(frames[0]), "chunk": chunk.name}
    return Sequence(anno.stem, frames, gt, meta=meta)
