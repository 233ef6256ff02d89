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


def select(sequences: list[Sequence], names: str | None = None, limit: int | None = None) -> list[Sequence]:
    """Keep the named sequences (comma-separated, in that order) and/or the first ``limit``; unknown
    names are an error."""
    if names:
        by_name = {s.name: s for s in sequences}
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise R1TrackError(f"unknown sequence(s): {', '.join(missing)}")
        sequences = [by_name[n] for n in wanted]
    return sequences if limit is None else sequences[: max(limit, 0)]
