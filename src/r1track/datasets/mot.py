"""MOTChallenge reader (MOT15, MOT16, MOT17, MOT20): every annotated identity as a single-object sequence.

A video folder holds ``img1/000001.jpg``..., ``gt/gt.txt`` and ``seqinfo.ini`` (``imDir``, ``imExt``,
``seqLength``, ``imWidth``, ``imHeight``, ``frameRate``; optional, then ``img1``, ``.jpg``, the frame
files and the first frame's header are used). ``gt.txt`` rows are ``frame, id, x, y, w, h, flag, class,
visibility[, ...]`` with 1-based frame numbers; boxes are taken as written. Conventions:
- MOT16/17/20: a row whose flag (7th column) is 0 is ignored (not to be considered), and only class 1
  (pedestrian) is kept where the class column (8th) is given;
- MOT15: those columns are -1 (or missing), so every row is kept; visibility -1 means "not given" and
  counts as visible.

Identity ``k`` of video ``V`` becomes the sequence ``V-k``: from its first visible annotated frame to its
last one, with the frames in between where it is not annotated kept as absent (NaN box, ``absent``
True, ``visible_ratio`` 0). ``visible_ratio`` is the visibility column elsewhere (MOT15: 1), so GOT-10k
scoring (``protocol("mot") == "got10k"``) leaves out exactly the frames where the target is not seen.
Identities with fewer than ``min_length`` visible annotated frames are left out. Sequences share their
video's frame files: each holds the folder and a number range, nothing is copied or decoded.
"""

from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np

from r1track.datasets.base import FrameFiles, Sequence, image_size, list_frames
from r1track.errors import DataError, R1TrackError, warn_data

MIN_LENGTH = 10  # visible annotated frames an identity needs to become a sequence
PEDESTRIAN = 1
SPLITS = ("train", "test")


def load(root: str | Path, split: str | None = None, min_length: int = MIN_LENGTH) -> list[Sequence]:
    """The identities of every video under ``root``: one video folder, a folder of video folders
    (e.g. ``MOT17/train``), or a benchmark root holding ``train/`` and ``test/`` (``split`` picks one,
    default ``train``). Elsewhere ``split`` only labels ``meta["split"]``."""
    if int(min_length) < 2:
        raise R1TrackError(f"the minimum track length must be at least 2 frames (got {min_length})")
    root = Path(root)
    videos, split = _videos(root, split)
    sequences = [seq for video in videos for seq in video_sequences(video, split, int(min_length))]
    if not sequences:
        raise DataError(
            root, f"no identity has {min_length} or more visible annotated frames (lower the minimum track length)"
        )
    return sequences


def _is_video(folder: Path) -> bool:
    return (folder / "img1").is_dir() or (folder / "seqinfo.ini").is_file()


def _videos(root: Path, split: str | None) -> tuple[list[Path], str]:
    if _is_video(root):
        return [root], split or "all"
    children = sorted(p for p in root.iterdir() if p.is_dir() and _is_video(p)) if root.is_dir() else []
    if children:
        return children, split or (root.name.lower() if root.name.lower() in SPLITS else "all")
    split = split or "train"
    if (root / split).is_dir():
        return _videos(root / split, split)
    raise DataError(
        root,
        "not a MOTChallenge folder: expected a video (img1/, gt/gt.txt, seqinfo.ini), "
        "folders of such videos, or train/ and test/ holding them",
    )


def video_sequences(folder: Path, split: str, min_length: int = MIN_LENGTH) -> list[Sequence]:
    """One sequence per identity of one video folder (see the module docstring)."""
    info = _seqinfo(folder / "seqinfo.ini")
    frames = _frames(folder, info)
    gt_path = folder / "gt" / "gt.txt"
    if not gt_path.is_file():
        raise DataError(gt_path, "ground-truth file is missing (MOTChallenge test videos have none)")
    rows, lines = _kept_rows(gt_path, *_read_rows(gt_path))
    if len(rows) and rows[:, 0].max() > len(frames):
        k = int(np.argmax(rows[:, 0]))
        raise DataError(
            gt_path, f"frame {int(rows[k, 0])} is past the video's {len(frames)} frames", line=int(lines[k])
        )
    resolution = _resolution(info, frames, folder / "seqinfo.ini")
    meta: dict = {"dataset": "mot", "split": split, "resolution": resolution, "video": folder.name}
    if "framerate" in info:
        meta["fps"] = _number(info, "framerate", folder / "seqinfo.ini")
    out = []
    for mine in np.split(rows, np.flatnonzero(np.diff(rows[:, 1])) + 1) if len(rows) else []:  # sorted by id
        seq = _identity(folder.name, int(mine[0, 1]), mine, frames, min_length, meta)
        if seq is not None:
            out.append(seq)
    return out


def _identity(
    video: str, identity: int, rows: np.ndarray, frames: FrameFiles, min_length: int, meta: dict
) -> Sequence | None:
    visibility = rows[:, 8] if rows.shape[1] > 8 else np.full(len(rows), -1.0)
    visibility = np.where(visibility < 0, 1.0, np.clip(visibility, 0.0, 1.0))  # -1: not given
    seen = rows[visibility > 0, 0].astype(int)
    if len(seen) < min_length:
        return None
    first, last = int(seen.min()), int(seen.max())
    inside = (rows[:, 0] >= first) & (rows[:, 0] <= last)
    index = rows[inside, 0].astype(int) - first
    gt = np.full((last - first + 1, 4), np.nan)
    gt[index] = rows[inside, 2:6]
    visible = np.zeros(len(gt))
    visible[index] = visibility[inside]
    return Sequence(
        name=f"{video}-{identity}",
        frames=frames[first - 1 : last],  # a number range of the shared folder: no copy
        gt=gt,
        absent=visible == 0,
        visible_ratio=visible,
        meta={**meta, "identity": identity, "first_frame": first},
    )


def _seqinfo(path: Path) -> dict:
    """``[Sequence]`` keys of seqinfo.ini, lower-cased; {} when there is no such file."""
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    try:
        parser.read_string(path.read_text(encoding="utf-8-sig", errors="replace"))
    except configparser.Error as e:
        raise DataError(path, f"cannot be read as an ini file ({str(e).splitlines()[0]})") from None
    if not parser.has_section("Sequence"):
        raise DataError(path, "has no [Sequence] section")
    return {k.lower(): v.strip() for k, v in parser.items("Sequence")}


def _frames(folder: Path, info: dict) -> FrameFiles:
    """The video's frames ``000001<ext>``... as a numbered range; every file number must be present."""
    image_dir = folder / info.get("imdir", "img1")
    files = list_frames(image_dir)
    if len(files) == 0:
        raise DataError(image_dir, "no frame files (000001.jpg ...)")
    count = int(_number(info, "seqlength", folder / "seqinfo.ini")) if "seqlength" in info else len(files)
    frames = FrameFiles.numbered(image_dir, "%06d" + info.get("imext", Path(files.name(0)).suffix), 1, count)
    missing = set(frames[i].name for i in range(count)) - set(files.name(i) for i in range(len(files)))
    if missing:
        shown = ", ".join(sorted(missing)[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataError(image_dir, f"{len(missing)} of the video's {count} frames are missing: {shown}")
    return frames


def _number(info: dict, key: str, path: Path) -> float:
    try:
        return float(info[key])
    except ValueError:
        raise DataError(path, f"{key} is not a number: {info[key]!r}") from None


def _resolution(info: dict, frames: FrameFiles, path: Path) -> tuple[int, int]:
    if "imwidth" in info and "imheight" in info:
        return int(_number(info, "imwidth", path)), int(_number(info, "imheight", path))
    return image_size(frames[0])


def _read_rows(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """gt.txt as an (N, C) float array, C >= 6, and the 1-based line number of each row (blank lines
    are skipped); a malformed line raises DataError naming it."""
    text = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    numbers = np.array([n for n, line in enumerate(text, start=1) if line.strip()], dtype=np.int64)
    if not len(numbers):
        return np.zeros((0, 6)), numbers
    try:
        rows = np.loadtxt([text[n - 1] for n in numbers], delimiter=",", ndmin=2, comments=None)
    except ValueError:
        rows = None
    if rows is not None and rows.shape[1] >= 6 and np.isfinite(rows[:, :2]).all():
        return rows, numbers
    columns = None
    for n in numbers:  # line by line, to name the line at fault
        line = text[n - 1].strip()
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            values = []
        if len(values) < 6 or not np.isfinite(values[:2]).all():
            raise DataError(path, f"expected frame,id,x,y,w,h[,flag,class,visibility], got {line!r}", line=int(n))
        if len(values) != (columns := columns or len(values)):
            raise DataError(path, f"{len(values)} columns where the first row has {columns}: {line!r}", line=int(n))
    raise DataError(path, "cannot be read as comma-separated numbers")


def _kept_rows(path: Path, rows: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows a single-object tracker is evaluated on (sorted by identity, then frame), with their
    line numbers."""
    keep = np.ones(len(rows), dtype=bool)
    if rows.shape[1] > 6:
        keep &= rows[:, 6] != 0  # MOT16+: 0 = ignore this row
    if rows.shape[1] > 7:
        keep &= (rows[:, 7] == PEDESTRIAN) | (rows[:, 7] == -1)  # MOT15 writes -1
    bad_frame = keep & ((rows[:, 0] < 1) | (rows[:, 0] != np.floor(rows[:, 0])))
    if bad_frame.any():
        k = int(np.argmax(bad_frame))
        raise DataError(path, f"frame numbers start at 1, got {rows[k, 0]:g}", line=int(lines[k]))
    unusable = keep & ~(np.isfinite(rows[:, 2:6]).all(axis=1) & (rows[:, 4] > 0) & (rows[:, 5] > 0))
    if unusable.any():
        shown = ", ".join(str(int(v)) for v in lines[unusable][:5]) + (", ..." if unusable.sum() > 5 else "")
        warn_data(
            path,
            f"{int(unusable.sum())} row(s) with a non-finite or empty box (line {shown}): "
            "those frames count as not annotated",
        )
        keep &= ~unusable
    rows, lines = rows[keep], lines[keep]
    order = np.lexsort((rows[:, 0], rows[:, 1]))
    rows, lines = rows[order], lines[order]
    same = (np.diff(rows[:, 0]) == 0) & (np.diff(rows[:, 1]) == 0)
    if same.any():
        k = int(np.argmax(same)) + 1
        raise DataError(
            path, f"identity {int(rows[k, 1])} has two boxes in frame {int(rows[k, 0])}", line=int(lines[k])
        )
    return rows, lines
