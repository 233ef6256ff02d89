"""Tracker registry: names for the command line, and factories that build fresh tracker instances."""

from __future__ import annotations

from typing import Callable

from r1track.errors import R1TrackError
from r1track.trackers.base import Tracker
from r1track.trackers.baselines import CSRT, KCF, Oracle, Static

TRACKERS = ("csrt", "kcf", "oracle", "static", "mllm")

_BASELINES = {"csrt": CSRT, "kcf": KCF, "oracle": Oracle, "static": Static}


def factory(name: str, args=None) -> Callable[[], Tracker]:
    """A zero-argument callable returning a new tracker each call.

    Baselines: the class itself (picklable, so process pools can rebuild trackers). ``"mllm"``: the MLLM
    tracker's factory built from the command-line ``args``; it loads one backend/model and shares it
    across all the instances it makes."""
    if name in _BASELINES:
        return _BASELINES[name]
    if name == "mllm":
        try:
            from r1track.trackers import mllm
        except ImportError as e:  # optional dependencies (transformers, torch, openai) missing
            raise R1TrackError(f"the mllm tracker cannot be loaded: {e} (pip install 'r1track[mllm]')") from e
        return mllm.factory_from_args(args)
    raise R1TrackError(f"unknown tracker {name!r}; choose one of {', '.join(TRACKERS)}")


__all__ = ["TRACKERS", "factory", "Tracker", "CSRT", "KCF", "Oracle", "Static"]
