"""The Sequence record and lazy frame access shared by every dataset reader."""

from __future__ import annotations

import operator
import os
import re
from collections import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from typing import Sequence as Seq

import cv2
import numpy as np
from PIL import Image

from r1track.errors import DataError, warn_data


def read_image(path: str | Path) -> np.ndarray:
    """Read one frame as an RGB uint8 array (H, W, 3); a missing or corrupt file raises DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "frame file is missing")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(path, "frame file cannot be decoded (corrupt or not an image)")
    if path.suffix.lower() in (".jpg", ".jpeg") and _jpeg_truncated(path):
        # libjpeg decodes a cut-off file without an error, filling the missing rows with grey
        warn_data(path, "JPEG frame is truncated (no end-of-image marker): its missing rows decode as grey")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _jpeg_truncated(path: Path) -> bool:
    """True when the file's last kilobyte holds no JPEG end-of-image marker (FF D9). Inside the
    compressed data an FF byte is always followed by 00 or a restart marker, so the marker cannot
    appear by chance; data some cameras append after it is allowed."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(f.tell() - 1024, 0))
        return b"\xff\xd9" not in f.read()


class VideoFrames:
    """Frames of a video file, decoded on demand; sequential access is cheap, seeking is allowed."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise DataError(self.path, "video cannot be opened")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        cap.release()
        if n <= 0:  # some containers do not store the count: count by decoding once
            cap, n = cv2.VideoCapture(str(self.path)), 0
            while cap.grab():
                n += 1
            cap.release()
        self._n = n
        self._cap: cv2.VideoCapture | None = None
        self._next = 0

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < self._n:
            raise IndexError(i)
        if self._cap is None or i != self._next:
            if self._cap is None:
                self._cap = cv2.VideoCapture(str(self.path))
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, img = self._cap.read()
        if not ok:
            raise DataError(self.path, f"frame {i} cannot be decoded")
        self._next = i + 1
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def __getstate__(self):  # picklable for worker processes: reopen lazily
        state = self.__dict__.copy()
        state["_cap"], state["_next"] = None, 0
        return state


@dataclass
class Sequence:
    """One tracking sequence. Frames are read lazily; boxes are xywh float (see r1track.boxes).

    gt: (N, 4) with NaN rows where no annotation exists (e.g. GOT-10k test after frame 0, OTB frames
    outside the annotated range, UAV123 absent frames).
    absent: (N,) bool, True where the target is known to be absent/fully hidden, or None if unknown.
    visible_ratio: (N,) float in [0, 1] where known (GOT-10k cover label / 8), else None.
    language: the dataset's natural-language description of the target, if it has one.
    meta: resolution, object_class, motion_class, attributes, ... as the dataset provides.
    """

    name: str
    frames: Seq[Path] | VideoFrames
    gt: np.ndarray
    absent: np.ndarray | None = None
    visible_ratio: np.ndarray | None = None
    language: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.gt = np.asarray(self.gt, dtype=np.float64).reshape(-1, 4)

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, i: int) -> np.ndarray:
        f = self.frames[i]
        return f if isinstance(f, np.ndarray) else read_image(f)

    def iter_frames(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.frame(i)

    @property
    def init_box(self) -> np.ndarray:
        return self.gt[0]


# --- Helpers shared by the dataset readers: listing frames, header-only sizes, annotation text files.

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_DIGITS = re.compile(r"(\d+)")
_NUMBERED_NAME = re.compile(r"(\d+)(\.[A-Za-z0-9]+)")
# a delimiter is a comma (with optional spaces around it) or a run of whitespace (tab, space)
_DELIMITER = re.compile(r"\s*,\s*|\s+")


def natural_key(name: str) -> list:
    """Sort key that orders the numbers inside names by value: 2.jpg before 10.jpg."""
    return [int(t) if k % 2 else t for k, t in enumerate(_DIGITS.split(name))]  # odd parts: digits


class FrameFiles(abc.Sequence):
    """The frame file paths of one sequence, stored compactly: a folder plus either a numbered
    pattern (``%08d.jpg`` from ``first``) or the file names. Behaves as a read-only list of Paths
    (indexing, slicing, len, iteration), so GOT-10k train's 1.4 M frames cost almost no memory."""

    def __init__(self, folder: str | Path, names: Seq[str]):
        self.folder = Path(folder)
        names = tuple(names)
        run = _numbered_run(names)
        self._names = None if run else names
        self._pattern, self._first = run or (None, 0)
        self._count = len(names)

    @classmethod
    def numbered(cls, folder: str | Path, pattern: str, first: int, count: int) -> FrameFiles:
        """Files ``pattern % first`` .. ``pattern % (first + count - 1)`` in ``folder``."""
        self = cls(folder, ())
        self._names, self._pattern, self._first, self._count = None, pattern, first, max(count, 0)
        return self

    def name(self, i: int) -> str:
        return self._names[i] if self._names is not None else self._pattern % (self._first + i)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i):
        if isinstance(i, slice):
            idx = range(self._count)[i]
            if self._names is None and idx.step == 1:
                return FrameFiles.numbered(self.folder, self._pattern, self._first + idx.start, len(idx))
            return FrameFiles(self.folder, [self.name(j) for j in idx])
        i = operator.index(i)
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError(i)
        return self.folder / self.name(i)

    def __repr__(self) -> str:
        return f"FrameFiles({str(self.folder)!r}, {self._count} frames)"


def missing_frames(frames: FrameFiles, count: int, first: int = 1) -> list[str]:
    """The names of the numbered frames ``first`` .. ``first + count - 1`` (numbered like the folder's
    first frame file) that are not in ``frames``: what a count mismatch is really about."""
    names = [frames.name(i) for i in range(len(frames))]
    m = _NUMBERED_NAME.fullmatch(names[0]) if names else None
    if m is None:
        return []
    pattern, present = f"%0{len(m.group(1))}d{m.group(2)}", set(names)
    return [pattern % k for k in range(first, first + count) if pattern % k not in present]


def count_mismatch(frames: FrameFiles, boxes: int, first: int = 1) -> str:
    """``"20 boxes for 19 frames"``, naming the missing frame files when numbered frames have gaps."""
    message = f"{boxes} boxes for {len(frames)} frames"
    missing = missing_frames(frames, boxes, first) if boxes > len(frames) else []
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        message += f": frame file{'s' if len(missing) > 1 else ''} {shown} missing in {frames.folder}"
    return message


def _numbered_run(names: tuple[str, ...]) -> tuple[str, int] | None:
    """(pattern, first) when the names are consecutive numbers with one extension, else None."""
    m = _NUMBERED_NAME.fullmatch(names[0]) if names else None
    if m is None:
        return None
    digits, ext = m.groups()
    pattern, first = f"%0{len(digits)}d{ext}", int(digits)
    if all(n == pattern % (first + k) for k, n in enumerate(names)):
        return pattern, first
    return None


def list_frames(folder: str | Path, extensions: Seq[str] = IMAGE_EXTENSIONS) -> FrameFiles:
    """The image files of a folder sorted naturally (0, 1, ..., 10); lists names, decodes nothing."""
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except OSError as e:
        raise DataError(folder, f"frame folder cannot be listed ({e.strerror or e})") from None
    exts = tuple(x.lower() for x in extensions)
    names = sorted(n for n in names if n.lower().endswith(exts))
    if _numbered_run(tuple(names)) is None:  # plain order is already numeric for padded names
        names.sort(key=natural_key)
    return FrameFiles(folder, names)


def image_size(path: str | Path) -> tuple[int, int]:
    """(W, H) of an image from its header only (no pixel decoding), as read_image would return it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "frame file is missing")
    try:
        with Image.open(path) as im:
            w, h = im.size
            # cv2.imread applies the EXIF orientation: a 90-degree tag swaps width and height
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(path, f"frame file cannot be read as an image ({e})") from None
    return int(w), int(h)


def _text_lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise DataError(path, f"{what} file is missing")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"{what} file cannot be read as text ({e})") from None
    while lines and not lines[-1].strip():  # trailing blank lines are harmless
        lines.pop()
    return lines


def _numbers(path: Path, line: str, n: int) -> list[float]:
    tokens = _DELIMITER.split(line.strip())
    if len(tokens) > 1 and tokens[-1] == "":  # a trailing delimiter
        tokens.pop()
    try:
        return [float(t) for t in tokens]
    except ValueError:
        msg = f"expected numbers separated by ',', tab or space, got {line.strip()!r}"
        raise DataError(path, msg, line=n) from None


def read_boxes(path: str | Path, allow_nan: bool = True) -> np.ndarray:
    """Read an ``x,y,w,h`` ground-truth file as (N, 4) float64. Delimiters may be ',', tab or spaces,
    mixed within a file (OTB). A malformed line raises DataError naming the file and line."""
    path = Path(path)
    lines = _text_lines(path, "ground-truth")
    if not lines:
        raise DataError(path, "ground-truth file is empty (at least the first frame's box is needed)")
    boxes = _boxes_fast(lines)
    if boxes is not None and not np.isinf(boxes).any() and (allow_nan or not np.isnan(boxes).any()):
        return boxes
    boxes = np.empty((len(lines), 4), dtype=np.float64)  # line by line, to name the line at fault
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(path, "empty line inside the ground truth (every frame needs a line)", line=n)
        values = _numbers(path, line, n)
        if len(values) != 4:
            raise DataError(path, f"expected 4 numbers (x, y, w, h), got {len(values)}: {line.strip()!r}", line=n)
        if np.isinf(values).any() or (not allow_nan and np.isnan(values).any()):
            raise DataError(path, f"box is not finite: {line.strip()!r}", line=n)
        boxes[n - 1] = values
    return boxes


def check_ground_truth(path: str | Path, gt: np.ndarray, first_line: int = 1, required: bool = True) -> None:
    """Frame 0's box is where every tracker starts: it must be finite (when ``required``) with w > 0 and
    h > 0, else a DataError names the file and line. A later box with zero or negative size is kept, as
    the toolkits keep it (no tracker can score on that frame), with one warning naming the lines. NaN
    rows are unannotated or absent frames."""
    first = gt[0]
    if np.isfinite(first).all():
        if first[2] <= 0 or first[3] <= 0:
            raise DataError(
                path,
                f"the first frame's box {_box_text(first)} has zero or negative width or "
                "height; trackers start from it",
                line=first_line,
            )
    elif required:
        raise DataError(
            path, f"the first frame's box is missing ({_box_text(first)}); trackers start from it", line=first_line
        )
    later = gt[1:]
    with np.errstate(invalid="ignore"):
        bad = np.nonzero(np.isfinite(later).all(axis=1) & ((later[:, 2] <= 0) | (later[:, 3] <= 0)))[0]
    if len(bad):
        lines = ", ".join(str(first_line + 1 + int(i)) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        warn_data(
            path,
            f"{len(bad)} box(es) after the first frame with zero or negative width or height "
            f"(line {lines}): kept, but no tracker can score on those frames",
        )


def _box_text(box: np.ndarray) -> str:
    return ",".join(f"{v:g}" for v in box)


def _boxes_fast(lines: list[str]) -> np.ndarray | None:
    """numpy's parser for the common one-delimiter files (GOT-10k train has 1.4 M lines); None when
    the file needs the line-by-line path (mixed delimiters, a blank or malformed line)."""
    try:
        boxes = np.loadtxt(lines, delimiter="," if "," in lines[0] else None, comments=None, ndmin=2, dtype=np.float64)
    except ValueError:
        return None
    return boxes if boxes.shape == (len(lines), 4) else None


def read_values(path: str | Path, allowed: Seq[int] | None = None) -> np.ndarray:
    """Read a label file (one value per line, or comma/space separated on one line) as a 1-D float64
    array; values outside ``allowed`` raise DataError naming the file and line."""
    path = Path(path)
    lines = _text_lines(path, "label")
    if all(line.strip() for line in lines):  # fast path: all values at once
        try:
            flat = np.array(_DELIMITER.split("\n".join(lines).strip()), dtype=np.float64)
        except ValueError:
            flat = None
        if flat is not None and (allowed is None or np.isin(flat, list(allowed)).all()):
            return flat
    values: list[float] = []  # line by line, to name the line at fault
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(path, "empty line inside a label file", line=n)
        row = _numbers(path, line, n)
        if allowed is not None and any(v not in allowed for v in row):
            bad = next(v for v in row if v not in allowed)
            raise DataError(path, f"label {bad:g} is not one of {sorted(allowed)}", line=n)
        values.extend(row)
    return np.asarray(values, dtype=np.float64)
