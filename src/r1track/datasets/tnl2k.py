"""TNL2K reader: ``<seq>/imgs/*.jpg|png`` (sorted by name), ``groundtruth.txt``, ``language.txt``."""

from __future__ import annotations

from pathlib import Path

from r1track.datasets.base import Sequence, check_ground_truth, image_size, list_frames, natural_key, read_boxes
from r1track.errors import DataError


def load(root: str | Path, split: str | None = None) -> list[Sequence]:
    """Sequences found in ``root``: folders holding ``imgs/`` and ``groundtruth.txt``, directly in
    ``root`` or one level down (the test set ships as ``TNL2K_test_subset_p1/`` ... folders), or
    ``root`` itself when it is one sequence. Sorted by name; ``split`` only labels ``meta["split"]``
    (default "test")."""
    root = Path(root)
    folders = _find(root)
    if not folders:
        raise DataError(
            root, "not a TNL2K root: expected <seq>/imgs/ with <seq>/groundtruth.txt (directly or one folder down)"
        )
    return [_sequence(folder, split or "test") for folder in folders]


def _is_sequence(folder: Path) -> bool:
    return (folder / "imgs").is_dir() and (folder / "groundtruth.txt").is_file()


def _find(root: Path) -> list[Path]:
    if _is_sequence(root):
        return [root]
    if not root.is_dir():
        return []
    found = []
    for d in (d for d in root.iterdir() if d.is_dir()):
        if _is_sequence(d):
            found.append(d)
        else:
            found.extend(dd for dd in d.iterdir() if dd.is_dir() and _is_sequence(dd))
    return sorted(found, key=lambda d: natural_key(d.name))


def _sequence(folder: Path, split: str) -> Sequence:
    frames = list_frames(folder / "imgs")
    gt_path = folder / "groundtruth.txt"
    gt = read_boxes(gt_path)
    if len(gt) != len(frames):
        raise DataError(gt_path, f"{len(gt)} boxes for {len(frames)} frames in {folder / 'imgs'}")
    check_ground_truth(gt_path, gt)
    lang = folder / "language.txt"
    language = lang.read_text(encoding="utf-8-sig", errors="replace").strip() if lang.is_file() else None
    meta = {"dataset": "tnl2k", "split": split, "resolution": image_size(frames[0])}
    return Sequence(folder.name, frames, gt, language=language or None, meta=meta)
