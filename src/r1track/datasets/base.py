"""The Sequence record and lazy frame access shared by every dataset reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence as Seq

import cv2
import numpy as np

from r1track.errors import DataError


def read_image(path: str | Path) -> np.ndarray:
    """Read one frame as an RGB uint8 array (H, W, 3); a missing or corrupt file raises DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "frame file is missing")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(path, "frame file cannot be decoded (corrupt or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


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
