"""The tracker interface (the got10k toolkit's, plus text initialisation, a determinism flag and
``track`` over a whole video)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Tracker(ABC):
    """Single-object tracker. Frames are RGB uint8 (H, W, 3); boxes are xywh floats in frame pixels.

    ``deterministic`` tells runners whether repetitions are needed (GOT-10k runs a non-deterministic
    tracker 3 times). It defaults to False, as the got10k toolkit's ``is_deterministic``: a tracker
    that does not say it gives identical boxes on every run gets the repetitions; each of ours states
    its own.
    """

    name: str = "tracker"
    deterministic: bool = False
    truth: np.ndarray | None = None  # the ground truth, set by runners when ``wants_ground_truth``

    @abstractmethod
    def init(self, image: np.ndarray, box=None, text: str | None = None) -> None:
        """Start on ``image`` from a box (xywh), or from a text description where supported."""

    @abstractmethod
    def update(self, image: np.ndarray) -> np.ndarray:
        """Return the target's box (xywh, float64 of shape (4,)) in ``image``; never NaN."""

    def track(self, frames, box=None, text: str | None = None, progress: bool = False) -> np.ndarray:
        """Track ``frames`` (a video file, a folder of frames, or any iterable of RGB uint8 arrays) from
        ``box`` (xywh in the first frame) or ``text``; (N, 4) xywh boxes, row 0 the initial box."""
        from r1track.track import track_timed

        return track_timed(frames, self, box, text, progress)[0]
