"""Dataset readers: one module per benchmark, each with ``load(root, split=None) -> list[Sequence]``.

Loading lists files and reads the annotation text files only; frames are decoded on demand by
``Sequence.frame(i)``, so no reader ever holds a video's frames in memory.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from r1track.datasets.base import Sequence
from r1track.errors import DataError, R1TrackError

DATASETS = ("got10k", "lasot", "trackingnet", "otb", "uav123", "tnl2k", "mot", "folder")
GOT10K_PROTOCOL = ("got10k", "mot")  # scored as GOT-10k (AO, SR; frames where the target is unseen left out)

__all__ = ["DATASETS", "Sequence", "add_options", "load", "load_from_args", "protocol"]


def _checked(name: str) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise R1TrackError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return key


def load(name: str, root: str | Path, split: str | None = None, **options) -> list[Sequence]:
    """The sequences of dataset ``name`` stored under ``root`` (see each reader for ``split``).

    ``options`` are reader options (``mot``: ``min_length``); one a reader does not take is an error,
    ``None`` values are left to the reader's defaults."""
    reader = importlib.import_module(f"r1track.datasets.{_checked(name)}")
    root = Path(root)
    if not root.exists():
        raise DataError(root, f"{name} root does not exist")
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(inspect.signature(reader.load).parameters) - {"root", "split"})
    if unknown:
        raise R1TrackError(f"the {name} dataset takes no {', '.join(unknown)} option")
    return reader.load(root, split, **options)


def add_options(parser) -> None:
    """Reader options for the commands that load a dataset (``load_from_args`` reads them back)."""
    parser.add_argument(
        "--min-track-length",
        type=int,
        default=None,
        dest="min_length",
        help="mot: identities need this many visible annotated frames (default 10)",
    )


def load_from_args(args) -> list[Sequence]:
    """``load`` with a command's ``--dataset``, ``--root``, ``--split`` and ``add_options`` options."""
    return load(args.dataset, args.root, args.split, min_length=getattr(args, "min_length", None))


def protocol(name: str) -> str:
    """How the dataset is run and scored: "got10k" (GOT-10k) or "ope" (one-pass evaluation)."""
    return "got10k" if _checked(name) in GOT10K_PROTOCOL else "ope"


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
