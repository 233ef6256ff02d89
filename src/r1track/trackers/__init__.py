"""Building trackers: ``load_tracker(model)`` for a ready tracker, ``tracker_factory`` for runners that
need a fresh tracker per sequence run."""

from __future__ import annotations

from typing import Callable

from r1track.errors import R1TrackError
from r1track.trackers.base import Tracker
from r1track.trackers.baselines import CSRT, KCF, Oracle, Static

BASELINES: dict[str, type[Tracker]] = {"csrt": CSRT, "kcf": KCF, "oracle": Oracle, "static": Static}
TRACKERS = (*BASELINES, "mllm")


def tracker_factory(model: str | None = None, backend: str = "transformers", **options) -> Callable[[], Tracker]:
    """A zero-argument callable returning a new tracker each call (see ``load_tracker``).

    Baselines: the class itself (picklable, so process pools can rebuild trackers). A model: MLLM trackers
    sharing one backend, loaded once here."""
    if model in BASELINES:
        if options:
            raise R1TrackError(f"the {model} baseline takes no options, got {', '.join(sorted(options))}")
        return BASELINES[model]
    try:
        from r1track.trackers import mllm
    except ImportError as e:  # optional dependencies (transformers, torch, openai) missing
        raise R1TrackError(f"the mllm tracker cannot be loaded: {e} (pip install 'r1track[mllm]')") from e
    return mllm.factory(model, backend, **options)


def load_tracker(model: str | None = None, backend: str = "transformers", **options) -> Tracker:
    """A ready tracker.

    ``model``: ``"nano"`` (the packaged model), a local checkpoint folder, a Hugging Face hub id, or the
    model name a server knows (``backend="openai"``, with ``base_url=...``); or a weight-free baseline:
    ``"csrt"``, ``"kcf"``, ``"static"``, ``"oracle"``. ``backend``: ``"transformers"``, ``"vllm"``,
    ``"openai"`` or ``"oracle"`` (a diagnostic that answers the ground truth; needs no model).
    ``options``: the tracker's (``crop_size``, ``template_factor``, ``search_factor``, ``prompt``,
    ``thinking``, ``pad``, ``max_scale_change``, ``scale_smoothing``, ``template_refresh``,
    ``three_image``, ``absent_search_scale``, ``absent_search_max``, ``family``), defaulting to the checkpoint's
    ``r1track.json`` settings, and the backend's (``device``, ``dtype``, ``max_new_tokens``,
    ``temperature``, ``min_pixels``, ``max_pixels``, ``base_url``, ``api_key``, ...). None means unset."""
    return tracker_factory(model, backend, **options)()


__all__ = ["BASELINES", "TRACKERS", "load_tracker", "tracker_factory", "Tracker", "CSRT", "KCF", "Oracle", "Static"]
