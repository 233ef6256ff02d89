"""score_got10k against the got10k toolkit's own ExperimentGOT10k.report on random GOT-10k val folders.

The fake val folder is what the toolkit reads (list.txt, groundtruth.txt, the three .label files,
meta_info.ini, frame files). Our side reads it two ways: Sequence records built here from the same
files, and r1track's own GOT-10k reader (r1track.datasets.got10k).
"""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # the toolkit imports pyplot and saves a plot

import cv2
import numpy as np
import pytest

pytest.importorskip("six")
got10k_experiments = pytest.importorskip("got10k.experiments")

from r1track import metrics, results  # noqa: E402
from r1track.datasets.base import Sequence  # noqa: E402

TRACKER = "rand"


def make_val_set(root, rng, n_seqs=4):
    """Random val split + 3 random runs per sequence in the toolkit's result layout."""
    split = root / "val"
    split.mkdir(parents=True)
    names = [f"GOT-10k_Val_{i + 1:06d}" for i in range(n_seqs)]
    (split / "list.txt").write_text("\n".join(names) + "\n")
    tracker_dir = root / "results" / "GOT-10k" / TRACKER
    for k, name in enumerate(names):
        folder = split / name
        folder.mkdir()
        n = int(rng.integers(6, 25))
        w, h = (int(v) for v in rng.integers(24, 120, 2))
        gt = np.column_stack([rng.uniform(-0.2 * w, w, n), rng.uniform(-0.2 * h, h, n),
                              rng.uniform(0, 0.7 * w, n), rng.uniform(0, 0.7 * h, n)])
        zero = rng.random(n) < 0.1  # zero-size boxes exist in GOT-10k, after the first frame
        zero[0] = False
        gt[zero, 2] = 0
        gt = np.round(gt, 4)
        np.savetxt(folder / "groundtruth.txt", gt, fmt="%.4f", delimiter=",")
        cover = rng.integers(0, 9, n)
        cover[rng.random(n) < 0.25] = 0
        cover[0], cover[1] = 8, 8  # the toolkit's AO of a sequence without visible frames is NaN
        np.savetxt(folder / "cover.label", cover, fmt="%d")
        np.savetxt(folder / "absence.label", (cover == 0).astype(int), fmt="%d")
        np.savetxt(folder / "cut_by_image.label", rng.integers(0, 2, n), fmt="%d")
        (folder / "meta_info.ini").write_text(
            "[METAINFO]\nurl: https://example.invalid\nobject_class: "
            f"{['cat', 'dog'][k % 2]}\nmotion_class: {['walking', 'running', 'flying'][k % 3]}\n"
            f"resolution: ({w}, {h})\n")
        # the toolkit only lists frames; r1track's reader takes the resolution from the first one
        ok, jpg = cv2.imencode(".jpg", np.zeros((h, w, 3), np.uint8))
        for i in range(n):
            (folder / f"{i + 1:08d}.jpg").write_bytes(jpg.tobytes())

        runs, times = [], []
        for _ in range(3):
            pred = gt + rng.normal(0, 0.15, (n, 1)) * np.array([w, h, w, h])
            wild = rng.random(n) < 0.2  # far off, across the border, or outside the image
            k_wild = int(wild.sum())
            pred[wild] = np.column_stack([rng.uniform(-w, 2 * w, k_wild), rng.uniform(-h, 2 * h, k_wild),
                                          rng.uniform(0, w, k_wild), rng.uniform(0, h, k_wild)])
            pred[rng.random(n) < 0.1, 3] = 0  # zero-size predictions
            pred[rng.random(n) < 0.05, 2] = -3  # a negative width, bounded to 0 by the toolkit
            pred[0] = gt[0]
            t = rng.uniform(0.005, 0.2, n)
            t[rng.random(n) < 0.2] = 0.0
            if k == n_seqs - 1:
                t[:] = 0.0  # no usable time in one sequence: the toolkit's -1 fps
            runs.append(pred)
            times.append(t)
        results.write_got10k(tracker_dir, name, runs, times)
    return names, tracker_dir


def sequences_from_files(root, names):
    seqs = []
    for name in names:
        folder = root / "val" / name
        gt = np.loadtxt(folder / "groundtruth.txt", delimiter=",")
        info = dict(line.split(": ", 1) for line in (folder / "meta_info.ini").read_text().splitlines()[1:])
        w, h = (int(v) for v in info["resolution"].strip("()").split(","))
        meta = {"resolution": (w, h), "cover": np.loadtxt(folder / "cover.label").astype(int),
                "object_class": info["object_class"], "motion_class": info["motion_class"], "split": "val"}
        seqs.append(Sequence(name, sorted(folder.glob("*.jpg")), gt, meta=meta))
    return seqs


def sequences_from_reader(root, names):
    got10k_reader = pytest.importorskip("r1track.datasets.got10k")
    seqs = got10k_reader.load(root, "val")
    assert [s.name for s in seqs] == names
    return seqs


def toolkit_report(root):
    exp = got10k_experiments.ExperimentGOT10k(str(root), subset="val", result_dir=str(root / "results"),
                                              report_dir=str(root / "reports"))
    return exp.report([TRACKER])[TRACKER]


def same(ours, theirs):
    if ours is None:
        return theirs == -1 or np.isnan(theirs)
    return abs(ours - theirs) <= 1e-9


@pytest.mark.parametrize("reader", [sequences_from_files, sequences_from_reader])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_got10k_matches_the_toolkit(tmp_path, seed, reader):
    rng = np.random.default_rng(seed)
    names, tracker_dir = make_val_set(tmp_path, rng)
    ours = metrics.score_got10k(reader(tmp_path, names), tracker_dir)
    theirs = toolkit_report(tmp_path)

    o, t = ours["overall"], theirs["overall"]
    assert same(o["ao"], t["ao"]) and same(o["sr50"], t["sr"]) and same(o["speed_fps"], t["speed_fps"])
    assert np.abs(np.array(o["success_curve"]) - np.array(t["succ_curve"])).max() <= 1e-9
    assert same(o["sr75"], t["succ_curve"][75])
    assert set(ours["sequences"]) == set(theirs["seq_wise"])
    for name, s in ours["sequences"].items():
        ts = theirs["seq_wise"][name]
        assert same(s["ao"], ts["ao"]) and same(s["sr50"], ts["sr"]), name
        assert same(s["speed_fps"], ts["speed_fps"]), name
        assert s["length"] == ts["length"]
    assert ours["sequences"][names[-1]]["speed_fps"] is None  # all-zero times
    assert 0.0 < o["ao"] < 1.0 and o["num_frames"] > 0  # a non-trivial case


def test_toolkit_bounds_with_meta_info_resolution_not_frame_size(tmp_path):
    """A frame size that disagrees with meta_info.ini: the toolkit uses meta_info.ini, so must we."""
    rng = np.random.default_rng(5)
    names, tracker_dir = make_val_set(tmp_path, rng, n_seqs=2)
    ok, jpg = cv2.imencode(".jpg", np.zeros((10, 12, 3), np.uint8))  # far smaller than the ini says
    for f in (tmp_path / "val" / names[0]).glob("*.jpg"):
        f.write_bytes(jpg.tobytes())
    ours = metrics.score_got10k(sequences_from_reader(tmp_path, names), tracker_dir)
    theirs = toolkit_report(tmp_path)
    assert same(ours["overall"]["ao"], theirs["overall"]["ao"])
    assert same(ours["sequences"][names[0]]["ao"], theirs["seq_wise"][names[0]]["ao"])


@pytest.mark.parametrize("seed", [3, 4])
def test_absent_frames_written_as_nan_score_as_the_toolkit(tmp_path, seed, capsys):
    """UAV123's convention in a GOT-10k split: an absent target's box is ``nan,nan,nan,nan`` with
    absence 1 and cover 0. The toolkit drops cover-0 frames before averaging; `r1track report` (our
    reader and scoring through the command line) must give the same numbers."""
    import json

    from r1track.cli import main

    rng = np.random.default_rng(seed)
    names, tracker_dir = make_val_set(tmp_path, rng)
    absent_frames = 0
    for name in names[:3]:
        folder = tmp_path / "val" / name
        gt = np.loadtxt(folder / "groundtruth.txt", delimiter=",")
        cover = np.loadtxt(folder / "cover.label").astype(int)
        absent = rng.random(len(gt)) < 0.3
        absent[:2] = False  # the first box starts the tracker; keep one scored frame per sequence
        gt[absent] = np.nan
        cover[absent] = 0
        absent_frames += int(absent.sum())
        np.savetxt(folder / "groundtruth.txt", gt, fmt="%.4f", delimiter=",")
        assert "nan,nan,nan,nan" in (folder / "groundtruth.txt").read_text() or not absent.any()
        np.savetxt(folder / "cover.label", cover, fmt="%d")
        np.savetxt(folder / "absence.label", absent.astype(int), fmt="%d")
    assert absent_frames > 3

    out = tmp_path / "scores.json"
    assert main(["report", "--dataset", "got10k", "--root", str(tmp_path), "--split", "val",
                 "--results", str(tracker_dir.parent), "--trackers", TRACKER, "--json", str(out)]) == 0
    capsys.readouterr()
    ours = json.loads(out.read_text())[TRACKER]
    theirs = toolkit_report(tmp_path)
    o, t = ours["overall"], theirs["overall"]
    assert same(o["ao"], t["ao"]) and same(o["sr50"], t["sr"]) and same(o["speed_fps"], t["speed_fps"])
    assert np.abs(np.array(o["success_curve"]) - np.array(t["succ_curve"])).max() <= 1e-9
    for name, s in ours["sequences"].items():
        assert same(s["ao"], theirs["seq_wise"][name]["ao"]) and same(s["sr50"], theirs["seq_wise"][name]["sr"])
    assert 0.0 < o["ao"] < 1.0


def test_a_split_whose_boxes_after_the_first_are_all_nan_is_still_a_test_split(tmp_path, capsys):
    from r1track.cli import main

    names, tracker_dir = make_val_set(tmp_path, np.random.default_rng(6), n_seqs=2)
    folder = tmp_path / "val" / names[1]
    gt = np.loadtxt(folder / "groundtruth.txt", delimiter=",")
    gt[1:] = np.nan
    np.savetxt(folder / "groundtruth.txt", gt, fmt="%.4f", delimiter=",")
    assert main(["report", "--dataset", "got10k", "--root", str(tmp_path), "--split", "val",
                 "--results", str(tracker_dir.parent), "--trackers", TRACKER]) == 2
    err = capsys.readouterr().err
    assert f"1 sequences ({names[1]}) have ground truth for the first frame only" in err
