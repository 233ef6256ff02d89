"""r1track: multimodal LLMs as single-object visual trackers.

``r1track.load_tracker(model, backend="transformers", **options)`` returns a ready tracker;
``tracker.track(frames, box=...)`` returns its (N, 4) xywh boxes. See ``r1track.trackers``."""

__version__ = "0.1.0"
__all__ = ["load_tracker", "__version__"]


def __getattr__(name: str):
    # imported on first use, so `import r1track` (and every CLI command) stays light
    if name == "load_tracker":
        from r1track.trackers import load_tracker

        return load_tracker
    raise AttributeError(f"module 'r1track' has no attribute {name!r}")
