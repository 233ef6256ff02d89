"""UAV123 (and UAV20L) reader: ``data_seq/UAV123/<folder>/%06d.jpg`` and ``anno/UAV123/<seq>.txt``.

Annotation lines of NaN mark frames where the target is absent (``absent`` True, gt NaN). Several
UAV123 sequences are sub-ranges of one image folder (bird1_1, bird1_2 and bird1_3 share
``data_seq/UAV123/bird1``); the frame ranges below are the UAV123 toolkit's published facts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from r1track.datasets.base import (
    FrameFiles,
    Sequence,
    check_ground_truth,
    image_size,
    list_frames,
    natural_key,
    read_boxes,
)
from r1track.errors import DataError, R1TrackError

VERSIONS = ("UAV123", "UAV20L")

# Frame ranges of the UAV123 toolkit's configSeqs (version, sequence, image folder, first and last
# frame, 1-based and inclusive), transcribed from the data table uav123.json of the got10k toolkit
# (MIT licence, https://github.com/got-10k/toolkit). A data table, not code.
_RANGES = """
UAV123 bike1 bike1 1 3085
UAV123 bike2 bike2 1 553
UAV123 bike3 bike3 1 433
UAV123 bird1_1 bird1 1 253
UAV123 bird1_2 bird1 775 1477
UAV123 bird1_3 bird1 1573 2437
UAV123 boat1 boat1 1 901
UAV123 boat2 boat2 1 799
UAV123 boat3 boat3 1 901
UAV123 boat4 boat4 1 553
UAV123 boat5 boat5 1 505
UAV123 boat6 boat6 1 805
UAV123 boat7 boat7 1 535
UAV123 boat8 boat8 1 685
UAV123 boat9 boat9 1 1399
UAV123 building1 building1 1 469
UAV123 building2 building2 1 577
UAV123 building3 building3 1 829
UAV123 building4 building4 1 787
UAV123 building5 building5 1 481
UAV123 car1_1 car1 1 751
UAV123 car1_2 car1 751 1627
UAV123 car1_3 car1 1627 2629
UAV123 car2 car2 1 1321
UAV123 car3 car3 1 1717
UAV123 car4 car4 1 1345
UAV123 car5 car5 1 745
UAV123 car6_1 car6 1 487
UAV123 car6_2 car6 487 1807
UAV123 car6_3 car6 1807 2953
UAV123 car6_4 car6 2953 3925
UAV123 car6_5 car6 3925 4861
UAV123 car7 car7 1 1033
UAV123 car8_1 car8 1 1357
UAV123 car8_2 car8 1357 2575
UAV123 car9 car9 1 1879
UAV123 car10 car10 1 1405
UAV123 car11 car11 1 337
UAV123 car12 car12 1 499
UAV123 car13 car13 1 415
UAV123 car14 car14 1 1327
UAV123 car15 car15 1 469
UAV123 car16_1 car16 1 415
UAV123 car16_2 car16 415 1993
UAV123 car17 car17 1 1057
UAV123 car18 car18 1 1207
UAV123 group1_1 group1 1 1333
UAV123 group1_2 group1 1333 2515
UAV123 group1_3 group1 2515 3925
UAV123 group1_4 group1 3925 4873
UAV123 group2_1 group2 1 907
UAV123 group2_2 group2 907 1771
UAV123 group2_3 group2 1771 2683
UAV123 group3_1 group3 1 1567
UAV123 group3_2 group3 1567 2827
UAV123 group3_3 group3 2827 4369
UAV123 group3_4 group3 4369 5527
UAV123 person1 person1 1 799
UAV123 person2_1 person2 1 1189
UAV123 person2_2 person2 1189 2623
UAV123 person3 person3 1 643
UAV123 person4_1 person4 1 1501
UAV123 person4_2 person4 1501 2743
UAV123 person5_1 person5 1 877
UAV123 person5_2 person5 877 2101
UAV123 person6 person6 1 901
UAV123 person7_1 person7 1 1249
UAV123 person7_2 person7 1249 2065
UAV123 person8_1 person8 1 1075
UAV123 person8_2 person8 1075 1525
UAV123 person9 person9 1 661
UAV123 person10 person10 1 1021
UAV123 person11 person11 1 721
UAV123 person12_1 person12 1 601
UAV123 person12_2 person12 601 1621
UAV123 person13 person13 1 883
UAV123 person14_1 person14 1 847
UAV123 person14_2 person14 847 1813
UAV123 person14_3 person14 1813 2923
UAV123 person15 person15 1 1339
UAV123 person16 person16 1 1147
UAV123 person17_1 person17 1 1501
UAV123 person17_2 person17 1501 2347
UAV123 person18 person18 1 1393
UAV123 person19_1 person19 1 1243
UAV123 person19_2 person19 1243 2791
UAV123 person19_3 person19 2791 4357
UAV123 person20 person20 1 1783
UAV123 person21 person21 1 487
UAV123 person22 person22 1 199
UAV123 person23 person23 1 397
UAV123 truck1 truck1 1 463
UAV123 truck2 truck2 1 385
UAV123 truck3 truck3 1 535
UAV123 truck4_1 truck4 1 577
UAV123 truck4_2 truck4 577 1261
UAV123 uav1_1 uav1 1 1555
UAV123 uav1_2 uav1 1555 2377
UAV123 uav1_3 uav1 2473 3469
UAV123 uav2 uav2 1 133
UAV123 uav3 uav3 1 265
UAV123 uav4 uav4 1 157
UAV123 uav5 uav5 1 139
UAV123 uav6 uav6 1 109
UAV123 uav7 uav7 1 373
UAV123 uav8 uav8 1 301
UAV123 wakeboard1 wakeboard1 1 421
UAV123 wakeboard2 wakeboard2 1 733
UAV123 wakeboard3 wakeboard3 1 823
UAV123 wakeboard4 wakeboard4 1 697
UAV123 wakeboard5 wakeboard5 1 1675
UAV123 wakeboard6 wakeboard6 1 1165
UAV123 wakeboard7 wakeboard7 1 199
UAV123 wakeboard8 wakeboard8 1 1543
UAV123 wakeboard9 wakeboard9 1 355
UAV123 wakeboard10 wakeboard10 1 469
UAV123 car1_s car1_s 1 1475
UAV123 car2_s car2_s 1 320
UAV123 car3_s car3_s 1 1300
UAV123 car4_s car4_s 1 830
UAV123 person1_s person1_s 1 1600
UAV123 person2_s person2_s 1 250
UAV123 person3_s person3_s 1 505
UAV20L bike1 bike1 1 3085
UAV20L bird1 bird1 1 2437
UAV20L car1 car1 1 2629
UAV20L car3 car3 1 1717
UAV20L car6 car6 1 4861
UAV20L car8 car8 1 2575
UAV20L car9 car9 1 1879
UAV20L car16 car16 1 1993
UAV20L group1 group1 1 4873
UAV20L group2 group2 1 2683
UAV20L group3 group3 1 5527
UAV20L person2 person2 1 2623
UAV20L person4 person4 1 2743
UAV20L person5 person5 1 2101
UAV20L person7 person7 1 2065
UAV20L person14 person14 1 2923
UAV20L person17 person17 1 2347
UAV20L person19 person19 1 4357
UAV20L person20 person20 1 1783
UAV20L uav1 uav1 1 3469
"""


def frame_ranges(version: str = "UAV123") -> dict[str, tuple[str, int, int]]:
    """sequence name -> (image folder, first frame, last frame) for UAV123 or UAV20L."""
    out = {}
    for row in _RANGES.split("\n"):
        if row.startswith(version + " "):
            _, name, folder, first, last = row.split()
            out[name] = (folder, int(first), int(last))
    return out


def load(root: str | Path, split: str | None = None) -> list[Sequence]:
    """Sequences of ``root/anno/<version>/*.txt`` sorted by name; ``split`` picks the version:
    "UAV123" (default; "test" means the same) or "UAV20L" (its annotations in ``anno/UAV20L``).

    A sequence named in the toolkit's table uses its image folder and frame range; any other
    sequence uses the folder of its own name and all its frames.
    """
    root = Path(root)
    version = _version(split)
    anno_dir = root / "anno" / version
    annos = sorted(anno_dir.glob("*.txt"), key=lambda p: natural_key(p.stem)) if anno_dir.is_dir() else []
    if not annos or not (root / "data_seq").is_dir():
        raise DataError(
            root, f"not a UAV123 root: expected anno/{version}/<seq>.txt and data_seq/UAV123/<seq>/000001.jpg ..."
        )
    ranges = frame_ranges(version)
    return [_sequence(root, anno, version, ranges.get(anno.stem)) for anno in annos]


def _version(split: str | None) -> str:
    key = (split or "UAV123").upper()
    if key == "TEST":
        key = "UAV123"
    if key not in VERSIONS:
        raise R1TrackError(f"unknown UAV123 split {split!r}: use UAV123 or UAV20L")
    return key


def _image_folder(root: Path, version: str, folder: str) -> Path:
    own = root / "data_seq" / version / folder  # UAV20L frames live in data_seq/UAV123 in the release
    return own if own.is_dir() else root / "data_seq" / "UAV123" / folder


def _sequence(root: Path, anno: Path, version: str, span: tuple[str, int, int] | None) -> Sequence:
    folder_name, first, last = span or (anno.stem, 0, 0)
    folder = _image_folder(root, version, folder_name)
    if not folder.is_dir():
        raise DataError(folder, f"image folder for {anno} is missing")
    if span is None:
        frames = list_frames(folder)
        where = f"all frames of {folder}"
    else:
        frames = FrameFiles.numbered(folder, "%06d.jpg", first, last - first + 1)
        where = f"frames {first}-{last} of {folder} (UAV123 toolkit range)"
        for path in (frames[0], frames[-1]):
            if not path.is_file():
                raise DataError(path, f"frame file is missing: {anno.stem} spans {where}")
    if len(frames) == 0:
        raise DataError(folder, "no frame files (000001.jpg ...)")
    gt = read_boxes(anno)
    if len(gt) != len(frames):
        raise DataError(anno, f"{len(gt)} boxes for {len(frames)} frames ({where})")
    check_ground_truth(anno, gt)
    absent = np.isnan(gt).any(axis=1)  # NaN lines: the target is out of view
    gt[absent] = np.nan
    meta = {"dataset": "uav123", "split": version, "resolution": image_size(frames[0])}
    return Sequence(anno.stem, frames, gt, absent=absent, meta=meta)
