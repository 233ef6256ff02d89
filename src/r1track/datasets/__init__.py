"""Dataset readers: one module per benchmark, each with ``load(root, split=None) -> list[Sequence]``.

Loading lists files and reads the annotation text files only; frames are decoded on demand by
``Sequence.frame(i)``, so no reader ever holds a video's frames in memory.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from r1track.datasets.base import Sequence
from r1track.errors import DataError, R1TrackError

DATASETS = ("got10k", "lasot", "trackingnet", "otb", "uav123", "tnl2k", "folder")

__all__ = ["DATASETS", "Sequence", "load", "protocol"]


def _checked(name: str) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise R1TrackError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return key


def load(name: str, root: str | Path, split: str | None = None) -> list[Sequence]:
    """The sequences of dataset ``name`` stored under ``root`` (see each reader for ``split``)."""
    reader = importlib.import_module(f"r1track.datasets.{_checked(name)}")
    root = Path(root)
    if not root.exists():
        raise DataError(root, f"{name} root does not exist")
    return reader.load(root, split)


def protocol(name: str) -> str:
    """How the dataset is run and scored: "got10k" (GOT-10k) or "ope" (one-pass evaluation)."""
    return "got10k" if _checked(name) == "got10k" else "ope"
