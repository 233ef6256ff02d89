"""r1track: multimodal LLMs as single-object visual trackers."""

__version__ = "0.1.0"
