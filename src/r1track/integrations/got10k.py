"""Any r1track tracker as a ``got10k.trackers.Tracker``, for users of the got10k toolkit (``pip install
got10k``): ``ExperimentGOT10k(root).run(Got10kTracker(r1track.load_tracker("nano")))`` runs it unchanged.

The toolkit hands PIL images and decides repetitions from ``is_deterministic`` (3 runs of a
non-deterministic tracker on GOT-10k), so both are mapped here; everything else is the wrapped tracker's.
"""

from __future__ import annotations

import numpy as np
from got10k.trackers import Tracker as ToolkitTracker

from r1track.trackers.base import Tracker


class Got10kTracker(ToolkitTracker):
    """``tracker`` (an r1track ``Tracker``) behind the got10k toolkit's interface; ``name`` names its
    results folder (default: the tracker's name)."""

    def __init__(self, tracker: Tracker, name: str | None = None):
        super().__init__(name or tracker.name, is_deterministic=bool(tracker.deterministic))
        self.tracker = tracker

    def init(self, image, box) -> None:
        self.tracker.init(np.asarray(image), np.asarray(box, dtype=np.float64))

    def update(self, image) -> np.ndarray:
        return np.asarray(self.tracker.update(np.asarray(image)), dtype=np.float64)
