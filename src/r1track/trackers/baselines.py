"""Trackers that need no weights: OpenCV's CSRT and KCF, and two diagnostic bounds.

``Oracle`` returns the ground truth (an upper bound that checks the evaluation chain end to end) and
``Static`` returns the initial box on every frame (a lower bound: what "no tracking" scores).
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from r1track.errors import DataWarning
from r1track.trackers.base import Tracker


def _require_box(box, who: str) -> np.ndarray:
    if box is None:
        raise ValueError(f"{who} needs an initial box (text initialisation is not supported)")
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.isfinite(b).all():
        raise ValueError(f"{who}: the initial box must be 4 finite numbers (x, y, w, h), got {box!r}")
    return b


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _span(start: float, size: float, limit: int, min_size: int) -> tuple[int, int]:
    """Round [start, start+size) to integer pixels inside [0, limit), at least ``min_size`` wide."""
    lo = int(np.clip(np.floor(start + 0.5), 0, limit - 1))
    hi = int(np.clip(np.floor(start + size + 0.5), 0, limit))
    if hi - lo < min_size:
        hi = min(lo + min_size, limit)
        lo = max(hi - min_size, 0)
    return lo, hi - lo


def _opencv_rect(box: np.ndarray, width: int, height: int, min_size: int = 2) -> tuple[int, int, int, int]:
    """OpenCV wants an integer rectangle inside the image (CSRT asserts on a 1-pixel side); ground truth
    can have zero width/height or leave the frame, so round, then keep ``min_size`` pixels inside."""
    x, w = _span(box[0], box[2], width, min_size)
    y, h = _span(box[1], box[3], height, min_size)
    return x, y, w, h


class _OpenCVTracker(Tracker):
    """Adapter for OpenCV's tracking API (frames RGB -> BGR, boxes float <-> int)."""

    def __init__(self):
        self._tracker = None
        self._box: np.ndarray | None = None

    @staticmethod
    def _create():
        raise NotImplementedError

    def init(self, image: np.ndarray, box=None, text: str | None = None) -> None:
        b = _require_box(box, self.name)
        h, w = image.shape[:2]
        self._box = b.copy()
        self._tracker = self._create()
        try:
            self._tracker.init(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), _opencv_rect(b, w, h))
        except cv2.error as e:
            # CSRT asserts on some boxes (a 150 x 2 one, a 1-pixel-high frame): this sequence cannot be
            # tracked, which must not abort a benchmark run; the box stays where it started
            self._tracker = None
            warnings.warn(
                DataWarning(
                    f"{self.name} cannot start from the box {b.tolist()} on a {w}x{h} "
                    f"frame ({_first_line(e)}): it keeps that box on every frame"
                ),
                stacklevel=2,
            )

    def update(self, image: np.ndarray) -> np.ndarray:
        if self._tracker is None:
            if self._box is None:
                raise RuntimeError(f"{self.name}: update() called before init()")
            return self._box.copy()

        try:
            ok, rect = self._tracker.update(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        except cv2.error:
            # some OpenCV trackers assert when the target leaves the frame: that is a tracking
            # failure like any other, not a reason to abort a benchmark run
            ok, rect = False, None
        if ok:
            r = np.asarray(rect, dtype=np.float64).reshape(-1)
            if r.shape == (4,) and np.isfinite(r).all() and r[2] > 0 and r[3] > 0:
                self._box = r
        # on failure keep the previous box: never NaN, never an empty box
        return self._box.copy()


class CSRT(_OpenCVTracker):
    """Discriminative correlation filter with channel and spatial reliability (Lukezic et al., 2017).
    Identical outputs across runs, processes and OpenCV thread counts on the same frames."""

    name = "CSRT"
    deterministic = True

    @staticmethod
    def _create():
        return cv2.TrackerCSRT_create() if hasattr(cv2, "TrackerCSRT_create") else cv2.legacy.TrackerCSRT_create()


class KCF(_OpenCVTracker):
    """Kernelized correlation filter (Henriques et al., 2015); fixed scale, fast."""

    name = "KCF"
    deterministic = True

    @staticmethod
    def _create():
        return cv2.TrackerKCF_create() if hasattr(cv2, "TrackerKCF_create") else cv2.legacy.TrackerKCF_create()


class Oracle(Tracker):
    """Returns the ground truth of each frame (the last finite one where the truth is unknown).

    The runner sets ``truth`` (the sequence's (N, 4) ground truth) before ``init`` because
    ``wants_ground_truth`` is True. Frames are counted from ``init`` (frame 0)."""

    name = "Oracle"
    deterministic = True
    wants_ground_truth = True

    def __init__(self):
        self.truth: np.ndarray | None = None
        self._frame = 0
        self._last = np.zeros(4)

    def init(self, image: np.ndarray, box=None, text: str | None = None) -> None:
        if self.truth is None:
            raise RuntimeError("Oracle needs the ground truth: set tracker.truth = seq.gt before init()")
        self._frame = 0
        self._last = _require_box(box, self.name)

    def update(self, image: np.ndarray) -> np.ndarray:
        self._frame += 1
        truth = np.asarray(self.truth, dtype=np.float64).reshape(-1, 4)
        if self._frame < len(truth) and np.isfinite(truth[self._frame]).all():
            self._last = truth[self._frame].copy()
        return self._last.copy()


class Static(Tracker):
    """Returns the initial box on every frame: the score of not tracking at all."""

    name = "Static"
    deterministic = True

    def __init__(self):
        self._box = np.zeros(4)

    def init(self, image: np.ndarray, box=None, text: str | None = None) -> None:
        self._box = _require_box(box, self.name)

    def update(self, image: np.ndarray) -> np.ndarray:
        return self._box.copy()
