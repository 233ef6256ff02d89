"""Generic reader: a folder of frames or a video file, with an optional ``groundtruth.txt``.

Frames are image files (.jpg .jpeg .png .bmp) sorted by the numbers in their names, directly in the
folder or in ``img/``, ``imgs/`` or ``img1/``; videos (.mp4 .avi .mov .mkv .webm) are decoded on demand
through OpenCV. The ground truth (``x,y,w,h`` with ',', tab or space delimiters) may stop early: the frames
after its last line get NaN boxes; more lines than frames is an error; without a ground-truth file
every box is NaN (enough for tracking from a text description).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from r1track.datasets.base import (
    FrameFiles,
    Sequence,
    VideoFrames,
    check_ground_truth,
    image_size,
    list_frames,
    natural_key,
    read_boxes,
)
from r1track.errors import DataError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
_FRAME_FOLDERS = (".", "img", "imgs", "img1")  # img1: a MOTChallenge video


def load(root: str | Path, split: str | None = None) -> list[Sequence]:
    """One sequence for a video file or a folder of frames; for a folder without frames of its own,
    one sequence per sub-folder with frames and per video file in it (sorted by name).

    Ground truth: ``groundtruth.txt`` in a frame folder; for a video ``<stem>.txt`` beside it (or, when
    ``root`` is the video itself, ``groundtruth.txt`` beside it). ``language.txt`` in a frame folder
    gives the language description. ``split`` only labels ``meta["split"]`` (default "all").
    """
    root = Path(root)
    split = split or "all"
    if root.is_file():
        if root.suffix.lower() not in VIDEO_EXTENSIONS:
            raise DataError(root, f"not a video file ({' '.join(VIDEO_EXTENSIONS)}) nor a folder of frames")
        gt_path = root.with_suffix(".txt")
        return [_video_sequence(root, gt_path if gt_path.is_file() else root.parent / "groundtruth.txt", split)]
    frames = _frame_files(root) if root.is_dir() else None
    if frames is not None:
        return [_folder_sequence(root, frames, split)]
    sequences = []
    for child in sorted(root.iterdir(), key=lambda p: natural_key(p.name)) if root.is_dir() else []:
        if child.is_dir() and (sub := _frame_files(child)) is not None:
            sequences.append(_folder_sequence(child, sub, split))
        elif child.is_file() and child.suffix.lower() in VIDEO_EXTENSIONS:
            sequences.append(_video_sequence(child, child.with_suffix(".txt"), split))
    if not sequences:
        raise DataError(
            root,
            "does not exist"
            if not root.exists()
            else "no frames: expected image files (.jpg .jpeg .png .bmp) in the folder or in img/, imgs/ "
            f"or img1/, sub-folders holding such frames, or video files ({' '.join(VIDEO_EXTENSIONS)})",
        )
    return sequences


def open_frames(path: str | Path) -> tuple[FrameFiles | VideoFrames, tuple[int, int]]:
    """The frames of a video file or of a folder of frames (itself, ``img/``, ``imgs/`` or ``img1/``) and their
    resolution (W, H) from the first frame, for tracking a single input."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise DataError(path, f"not a video file ({' '.join(VIDEO_EXTENSIONS)}) nor a folder of frames")
        frames = _video(path)
        return frames, _video_size(frames)
    if not path.is_dir():
        raise DataError(path, "does not exist")
    files = _frame_files(path)
    if files is None:
        raise DataError(
            path, "no frames: expected image files (.jpg .jpeg .png .bmp) in the folder or in img/, imgs/ or img1/"
        )
    return files, image_size(files[0])


def _frame_files(folder: Path) -> FrameFiles | None:
    for sub in _FRAME_FOLDERS:
        candidate = folder / sub
        if candidate.is_dir() and len(frames := list_frames(candidate)) > 0:
            return frames
    return None


def _video(path: Path) -> VideoFrames:
    frames = VideoFrames(path)
    if len(frames) == 0:
        raise DataError(path, "video has no frames (empty or unreadable)")
    return frames


def _video_size(frames: VideoFrames) -> tuple[int, int]:
    cap = cv2.VideoCapture(str(frames.path))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    if w <= 0 or h <= 0:  # container without the size: decode the first frame
        h, w = frames[0].shape[:2]
    return w, h


def _boxes(gt_path: Path, n: int) -> np.ndarray:
    if not gt_path.is_file():
        return np.full((n, 4), np.nan)
    gt = read_boxes(gt_path)
    if len(gt) > n:
        raise DataError(gt_path, f"{len(gt)} boxes but only {n} frames")
    check_ground_truth(gt_path, gt, required=False)  # tracking from a text description needs no box
    return np.vstack([gt, np.full((n - len(gt), 4), np.nan)])


def _folder_sequence(folder: Path, frames: FrameFiles, split: str) -> Sequence:
    lang = folder / "language.txt"
    language = lang.read_text(encoding="utf-8-sig", errors="replace").strip() if lang.is_file() else None
    meta = {"dataset": "folder", "split": split, "resolution": image_size(frames[0])}
    gt = _boxes(folder / "groundtruth.txt", len(frames))
    return Sequence(folder.name, frames, gt, language=language or None, meta=meta)


def _video_sequence(path: Path, gt_path: Path, split: str) -> Sequence:
    frames = _video(path)
    meta = {"dataset": "folder", "split": split, "resolution": _video_size(frames), "fps": frames.fps}
    return Sequence(path.stem, frames, _boxes(gt_path, len(frames)), meta=meta)
