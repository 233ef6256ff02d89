"""GOT-10k reader: ``{train,val,test}/list.txt`` and one folder per sequence.

A sequence folder holds ``00000001.jpg``..., ``groundtruth.txt`` (``x,y,w,h``; the test split has the
first line only), and where the split has them ``absence.label`` (0/1), ``cover.label`` (0..8),
``cut_by_image.label`` (0/1) and ``meta_info.ini``. Loading lists files and reads text; no frame is
decoded (only the first frame's header, for the resolution).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from r1track.datasets.base import (
    Sequence,
    check_ground_truth,
    count_mismatch,
    image_size,
    list_frames,
    read_boxes,
    read_values,
)
from r1track.errors import DataError

SPLITS = ("train", "val", "test")
_RESOLUTION = re.compile(r"\(?\s*(\d+)\s*,\s*(\d+)\s*\)?")


def load(root: str | Path, split: str | None = None) -> list[Sequence]:
    """Sequences of one split, in ``list.txt`` order.

    ``root`` is either the GOT-10k root holding ``train/ val/ test/`` (``split`` picks one, default
    ``"val"``) or a split folder itself (it has ``list.txt``; its name gives the split unless ``split``
    is given). Only the ``test`` split may have a first-line-only ground truth (the rest is NaN).
    """
    root = Path(root)
    if (root / "list.txt").is_file():
        split_dir = root
        split = split or (root.name.lower() if root.name.lower() in SPLITS else "val")
    else:
        split = split or "val"
        split_dir = root / split
        if not (split_dir / "list.txt").is_file():
            found = [s for s in SPLITS if (root / s / "list.txt").is_file()]
            if found:
                raise DataError(
                    root,
                    f"GOT-10k split {split!r} not found: expected {split_dir / 'list.txt'}"
                    f" (splits here: {', '.join(found)})",
                )
            raise DataError(
                root,
                "not a GOT-10k root: expected list.txt (a split folder) or "
                "train/, val/, test/ folders holding list.txt",
            )
    return [_sequence(split_dir / name, split) for name in _sequence_names(split_dir / "list.txt")]


def _sequence_names(list_path: Path) -> list[str]:
    names = []
    for n, line in enumerate(list_path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if not (list_path.parent / name).is_dir():
            raise DataError(list_path, f"sequence folder {list_path.parent / name} is missing", line=n)
        names.append(name)
    return names


def _sequence(folder: Path, split: str) -> Sequence:
    frames = list_frames(folder)
    if len(frames) == 0:
        raise DataError(folder, "no frame files (00000001.jpg ...) in the sequence folder")
    n = len(frames)
    gt_path = folder / "groundtruth.txt"
    gt = read_boxes(gt_path)
    if len(gt) != n:
        if split == "test" and len(gt) == 1:  # the test split only gives the first box
            gt = np.vstack([gt, np.full((n - 1, 4), np.nan)])
        else:
            raise DataError(gt_path, count_mismatch(frames, len(gt)))
    check_ground_truth(gt_path, gt)

    meta: dict = {"dataset": "got10k", "split": split}
    info_path = folder / "meta_info.ini"
    info = _meta_info(info_path) if info_path.is_file() else {}
    meta.update(info)
    meta["resolution"] = image_size(frames[0])

    absence = _labels(folder / "absence.label", n, (0, 1))
    cover = _labels(folder / "cover.label", n, range(9))
    cut = _labels(folder / "cut_by_image.label", n, (0, 1))
    if cover is not None:
        meta["cover"] = cover.astype(np.int64)
    if cut is not None:
        meta["cut_by_image"] = cut.astype(bool)
    return Sequence(
        name=folder.name,
        frames=frames,
        gt=gt,
        absent=None if absence is None else absence == 1,
        visible_ratio=None if cover is None else cover / 8.0,
        language=info.get("description") or None,
        meta=meta,
    )


def _labels(path: Path, n: int, allowed) -> np.ndarray | None:
    if not path.is_file():
        return None
    values = read_values(path, allowed=allowed)
    if len(values) != n:
        raise DataError(path, f"{len(values)} labels for {n} frames")
    return values


def _meta_info(path: Path) -> dict:
    """``[METAINFO]`` then ``key: value`` lines; every key is kept as a string, except that
    ``resolution: (W, H)`` becomes the tuple ``meta_resolution`` (``meta["resolution"]`` is the
    first frame's size, read from its header)."""
    info: dict = {}
    for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("[") or ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        info[key] = value
    res = _RESOLUTION.fullmatch(info.pop("resolution", ""))
    if res:
        info["meta_resolution"] = (int(res.group(1)), int(res.group(2)))
    return info
