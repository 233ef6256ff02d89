"""LaSOT (and LaSOT-ext) reader: ``<class>/<class>-<n>/img/%08d.jpg``.

Each sequence folder has ``groundtruth.txt`` (``x,y,w,h``), ``full_occlusion.txt`` and
``out_of_view.txt`` (0/1, comma separated on one line; the target is absent when either is 1) and
``nlp.txt`` (the language description).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from r1track.datasets.base import (
    Sequence,
    check_ground_truth,
    image_size,
    list_frames,
    natural_key,
    read_boxes,
    read_values,
)
from r1track.errors import DataError

LIST_FILES = {"test": "testing_set.txt", "train": "training_set.txt"}


def load(root: str | Path, split: str | None = None) -> list[Sequence]:
    """Sequences under ``root`` (the folder holding the class folders).

    With ``split`` "test" or "train" and the matching list file in ``root`` (``testing_set.txt`` /
    ``training_set.txt``), the list gives the sequences and their order. Otherwise every sequence
    found is loaded (sorted by class, then number): a LaSOT test download holds the 280 test
    sequences only, so no list is needed there. ``meta["split"]`` is ``split`` or "all".
    """
    root = Path(root)
    list_file = root / LIST_FILES[split] if split in LIST_FILES else None
    if list_file is not None and list_file.is_file():
        folders = _listed(list_file)
    else:
        folders = _found(root)
    if not folders:
        raise DataError(
            root, "not a LaSOT root: expected <class>/<class>-<n>/ folders holding img/ and groundtruth.txt"
        )
    return [_sequence(folder, split or "all") for folder in folders]


def _found(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    folders = []
    for cls in sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: natural_key(d.name)):
        for seq in cls.iterdir():
            if seq.name.startswith(cls.name + "-") and (seq / "img").is_dir():
                folders.append(seq)
    return sorted(folders, key=lambda d: (natural_key(d.parent.name), natural_key(d.name)))


def _listed(list_file: Path) -> list[Path]:
    folders = []
    for n, line in enumerate(list_file.read_text(encoding="utf-8-sig").splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        folder = list_file.parent / name.rsplit("-", 1)[0] / name
        if not (folder / "img").is_dir():
            raise DataError(list_file, f"sequence {name!r} is listed but {folder / 'img'} is missing", line=n)
        folders.append(folder)
    return folders


def _sequence(folder: Path, split: str) -> Sequence:
    frames = list_frames(folder / "img")
    gt_path = folder / "groundtruth.txt"
    gt = read_boxes(gt_path)
    if len(gt) > len(frames):
        raise DataError(gt_path, f"{len(gt)} boxes but only {len(frames)} frames in {folder / 'img'}")
    # the sequence is the annotated frames (monkey-17 has more frames on disk than boxes)
    frames = frames[: len(gt)]
    check_ground_truth(gt_path, gt)
    flags = [_flags(folder / f, len(gt)) for f in ("full_occlusion.txt", "out_of_view.txt")]
    flags = [f for f in flags if f is not None]
    absent = np.logical_or.reduce(flags) if flags else None
    nlp = folder / "nlp.txt"
    language = nlp.read_text(encoding="utf-8-sig", errors="replace").strip() if nlp.is_file() else None
    meta = {
        "dataset": "lasot",
        "split": split,
        "resolution": image_size(frames[0]),
        "object_class": folder.parent.name,
    }
    return Sequence(folder.name, frames, gt, absent=absent, language=language or None, meta=meta)


def _flags(path: Path, n: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    values = read_values(path, allowed=(0, 1))
    if len(values) != n:
        raise DataError(path, f"{len(values)} flags for {n} annotated frames")
    return values == 1
