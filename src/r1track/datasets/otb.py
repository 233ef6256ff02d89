"""OTB100 reader: ``<Seq>/img/%04d.jpg`` and ``groundtruth_rect.txt``.

Quirks handled (facts from the OTB toolkit's sequence configuration):
- the ground truth uses ',' or tab or spaces, mixed within a file (one BlurCar1 line has a space);
- some sequences are annotated on a frame range only; the Sequence is exactly that range;
- Jogging and Skating2 have two targets (``groundtruth_rect.1.txt`` / ``.2.txt``): two sequences
  named ``Jogging-1`` and ``Jogging-2`` sharing the frames;
- Board's frames have 5 digits (the img folder is simply sorted by name);
- ``attrs.txt`` ("SV, DEF, FM") gives ``meta["attributes"]``.
"""

from __future__ import annotations

import re
from pathlib import Path

from r1track.datasets.base import (
    FrameFiles,
    Sequence,
    check_ground_truth,
    image_size,
    list_frames,
    natural_key,
    read_boxes,
)
from r1track.errors import DataError

# First and last annotated frame numbers (1-based file numbers); None = up to the last frame on disk.
FRAME_RANGES: dict[str, tuple[int, int | None]] = {
    "David": (300, 770),
    "Football1": (1, 74),
    "Freeman3": (1, 460),
    "Freeman4": (1, 283),
    "Diving": (1, 215),
    "BlurCar1": (247, 988),
    "BlurCar3": (3, 359),
    "BlurCar4": (18, 397),
    "Tiger1": (6, None),  # its first 5 frames are omitted
}
_NUMBER = re.compile(r"(\d+)\D*$")


def load(root: str | Path, split: str | None = None) -> list[Sequence]:
    """Sequences of an OTB root (a folder of sequence folders) or of one sequence folder.

    Folders without ``img/`` are skipped. ``split`` only labels ``meta["split"]`` (default "test").
    """
    root = Path(root)
    if _is_sequence(root):
        folders = [root]
    else:
        folders = (
            sorted((d for d in root.iterdir() if _is_sequence(d)), key=lambda d: natural_key(d.name))
            if root.is_dir()
            else []
        )
    if not folders:
        raise DataError(
            root,
            "not an OTB root: expected <Seq>/img/ frames with <Seq>/groundtruth_rect.txt (or one such sequence folder)",
        )
    return [seq for folder in folders for seq in _sequences(folder, split or "test")]


def _is_sequence(folder: Path) -> bool:
    return (folder / "img").is_dir()


def _sequences(folder: Path, split: str) -> list[Sequence]:
    gt_paths = sorted(folder.glob("groundtruth_rect.*.txt"), key=lambda p: natural_key(p.name))
    if (folder / "groundtruth_rect.txt").is_file() or not gt_paths:
        targets = [(folder.name, folder / "groundtruth_rect.txt")]
    elif len(gt_paths) == 1:  # Human4 ships groundtruth_rect.2.txt only: still one target, "Human4"
        targets = [(folder.name, gt_paths[0])]
    else:  # one file per target: groundtruth_rect.1.txt -> "<Seq>-1"
        targets = [(f"{folder.name}-{p.name.split('.')[1]}", p) for p in gt_paths]
    all_frames = list_frames(folder / "img")
    if len(all_frames) == 0:
        raise DataError(folder / "img", "no frame files")
    attributes = _attributes(folder / "attrs.txt")
    out = []
    for name, gt_path in targets:
        boxes = read_boxes(gt_path)
        frames, gt = _annotated(folder.name, all_frames, boxes, gt_path)
        check_ground_truth(gt_path, gt, first_line=len(boxes) - len(gt) + 1)
        meta = {"dataset": "otb", "split": split, "resolution": image_size(frames[0])}
        if attributes is not None:
            meta["attributes"] = attributes
        out.append(Sequence(name, frames, gt, meta=meta))
    return out


def _annotated(seq: str, frames: FrameFiles, gt, gt_path: Path):
    """The frames of the annotated range and their boxes."""
    if seq not in FRAME_RANGES:
        if len(gt) != len(frames):
            raise DataError(gt_path, f"{len(gt)} boxes for {len(frames)} frames in {frames.folder}")
        return frames, gt
    first, last = FRAME_RANGES[seq]
    numbers = [_frame_number(frames.name(i), frames.folder) for i in range(len(frames))]
    last = numbers[-1] if last is None else last
    keep = [i for i, k in enumerate(numbers) if first <= k <= last]
    if len(keep) != last - first + 1:
        raise DataError(
            frames.folder,
            f"{seq} is annotated on frames {first}-{last} but {len(keep)} of "
            f"those {last - first + 1} frame files are present",
        )
    n = len(keep)
    if len(gt) == last and first > 1:  # boxes counted from frame 1 (Tiger1): drop the omitted ones
        gt = gt[first - 1 :]
    if len(gt) < n:
        raise DataError(gt_path, f"{len(gt)} boxes for the {n} frames {first}-{last} of {seq}")
    if len(gt) > n:
        raise DataError(gt_path, f"{len(gt)} boxes but {seq} is annotated on the {n} frames {first}-{last}")
    return frames[keep[0] : keep[-1] + 1], gt


def _frame_number(name: str, folder: Path) -> int:
    m = _NUMBER.search(Path(name).stem)
    if m is None:
        raise DataError(folder / name, "frame file name has no frame number")
    return int(m.group(1))


def _attributes(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    tokens = re.split(r"[,\s]+", path.read_text(encoding="utf-8-sig", errors="replace"))
    return list(dict.fromkeys(t for t in tokens if t))
