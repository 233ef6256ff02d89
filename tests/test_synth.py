"""The synthetic GOT-10k-layout benchmark: determinism, layout, exact labels, test split, overwrite rules."""

from __future__ import annotations

import configparser
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from r1track import synth
from r1track.cli import main as cli_main
from r1track.errors import R1TrackError

SMALL = "160x120"


def _files(split_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(split_dir)): p.read_bytes() for p in sorted(split_dir.rglob("*")) if p.is_file()}


def _meta(seq_dir: Path) -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read_string((seq_dir / "meta_info.ini").read_text())
    return dict(parser["METAINFO"])


def _rows(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.fixture(scope="module")
def val_set(tmp_path_factory) -> Path:
    """A moderate set with the default (varied) frame sizes, shared by several tests."""
    out = tmp_path_factory.mktemp("synth")
    return synth.generate(out, sequences=10, frames=40, seed=11, progress=False)


def test_same_seed_gives_same_bytes_and_sequences_do_not_depend_on_count(tmp_path):
    a = synth.generate(tmp_path / "a", 3, 15, seed=5, progress=False)
    b = synth.generate(tmp_path / "b", 3, 15, seed=5, progress=False)
    fa, fb = _files(a), _files(b)
    assert fa == fb and len(fa) == 1 + 3 * (15 + 5)
    two = _files(synth.generate(tmp_path / "c", 2, 15, seed=5, progress=False))
    assert {k: v for k, v in two.items() if k != "list.txt"} == {
        k: v for k, v in fa.items() if k.startswith(("Synth_Val_000001/", "Synth_Val_000002/"))}
    other = _files(synth.generate(tmp_path / "d", 3, 15, seed=6, progress=False))
    for name in ("Synth_Val_000001", "Synth_Val_000002", "Synth_Val_000003"):
        assert other[f"{name}/groundtruth.txt"] != fa[f"{name}/groundtruth.txt"]
        assert other[f"{name}/00000001.jpg"] != fa[f"{name}/00000001.jpg"]


def test_layout_is_complete_got10k(val_set):
    names = _rows(val_set / "list.txt")
    assert names == [f"Synth_Val_{i:06d}" for i in range(1, 11)]
    sizes = set()
    for name in names:
        seq = val_set / name
        assert sorted(p.name for p in seq.glob("*.jpg")) == [f"{i:08d}.jpg" for i in range(1, 41)]
        for label in ("groundtruth.txt", "absence.label", "cover.label", "cut_by_image.label"):
            assert len(_rows(seq / label)) == 40, (name, label)
        gt = np.loadtxt(seq / "groundtruth.txt", delimiter=",")
        assert all(len(v.split(".")[1]) == 4 for v in _rows(seq / "groundtruth.txt")[0].split(","))
        meta = _meta(seq)
        for key in ("object_class", "motion_class", "major_class", "root_class", "resolution", "description"):
            assert meta[key], key
        assert meta["motion_class"] in synth.MOTIONS
        h, w = cv2.imread(str(seq / "00000001.jpg")).shape[:2]
        assert meta["resolution"] == f"({w}, {h})"
        assert w % 28 and h % 28  # default sizes avoid the patch grid
        sizes.add((w, h))
        # boxes lie inside the image and are not empty
        assert (gt[:, 2:] >= 1).all() and (gt[:, 0] >= 0).all() and (gt[:, 1] >= 0).all()
        assert (gt[:, 0] + gt[:, 2] <= w).all() and (gt[:, 1] + gt[:, 3] <= h).all()
    assert len(sizes) > 1  # frame sizes vary per sequence


def test_independent_got10k_toolkit_reads_the_output(val_set):
    got10k = pytest.importorskip("got10k.datasets")
    dataset = got10k.GOT10k(str(val_set.parent), subset="val", return_meta=True)
    assert len(dataset) == 10
    img_files, anno, meta = dataset[0]
    assert len(img_files) == len(anno) == 40 and meta["cover"].shape == (40,)


def test_ground_truth_is_the_tight_box_of_the_target_pixels(tmp_path):
    """Render each frame with and without the target: the pixels that change lie within the box (+2 px for
    anti-aliasing), reach every edge of it when the target is fully visible, and vanish when it is hidden."""
    split_dir = synth.generate(tmp_path, 6, 30, seed=3, size="200x150", progress=False)
    checked_full = 0
    for index in range(1, 7):
        plan = synth.plan_sequence(3, "val", index, 30, (200, 150))
        seq = split_dir / plan.name
        gt = np.loadtxt(seq / "groundtruth.txt", delimiter=",")
        covers = np.loadtxt(seq / "cover.label", dtype=int)
        first_strong = None
        for t in range(30):
            shown, hidden = synth.render_frame(plan, t), synth.render_frame(plan, t, with_target=False)
            assert np.array_equal(shown.box, gt[t]) and shown.cover == covers[t]
            # the written frame is this rendering, up to JPEG q90 loss (grain and chroma subsampling)
            decoded = cv2.cvtColor(cv2.imread(str(seq / f"{t + 1:08d}.jpg")), cv2.COLOR_BGR2RGB)
            assert np.abs(decoded.astype(int) - shown.image).mean() < 6
            diff = np.abs(shown.image.astype(int) - hidden.image).max(-1)
            ys, xs = np.nonzero(diff)
            x, y, w, h = gt[t]
            if len(xs):
                assert xs.min() >= x - 2 and xs.max() + 1 <= x + w + 2, (plan.name, t)
                assert ys.min() >= y - 2 and ys.max() + 1 <= y + h + 2, (plan.name, t)
            strong = int((diff > 40).sum())
            if t == 0:
                first_strong = strong
            if covers[t] == 8:
                # every edge row/column of the box shows the target (the anti-aliased rim may add a pixel)
                assert xs.min() <= x and ys.min() <= y, (plan.name, t)
                assert xs.max() + 1 >= x + w and ys.max() + 1 >= y + h, (plan.name, t)
                checked_full += 1
            if covers[t] == 0:
                assert strong <= 0.02 * first_strong, (plan.name, t)
    assert checked_full > 60


def test_cover_and_absence_are_consistent_and_occlusion_happens(val_set):
    partial = full = cut = 0
    for name in _rows(val_set / "list.txt"):
        cover = np.loadtxt(val_set / name / "cover.label", dtype=int)
        absence = np.loadtxt(val_set / name / "absence.label", dtype=int)
        cut_labels = np.loadtxt(val_set / name / "cut_by_image.label", dtype=int)
        assert set(np.unique(cover)) <= set(range(9)) and set(np.unique(absence)) <= {0, 1}
        assert np.array_equal(absence == 1, cover == 0), name
        assert cover[0] == 8 and absence[0] == 0 and cut_labels[0] == 0  # the first frame shows it whole
        partial += bool(((cover > 0) & (cover < 8)).any())
        full += bool((cover == 0).any())
        cut += bool(cut_labels.any())
    assert partial >= 2 and full >= 1


def test_cover_bins_follow_got10k():
    bins = {0: 0, 1: 1, 15: 1, 16: 2, 30: 2, 31: 3, 45: 3, 60: 4, 75: 5, 76: 6, 90: 6, 91: 7, 99: 7, 100: 8}
    for percent, expected in bins.items():
        assert synth.cover_label(percent, 100) == expected, percent
    assert synth.cover_label(1501, 10000) == 2 and synth.cover_label(9001, 10000) == 7
    assert synth.cover_label(9999, 10000) == 7  # anything short of fully visible is below 8


def test_description_matches_meta_and_frame0_size(val_set):
    for name in _rows(val_set / "list.txt"):
        meta = _meta(val_set / name)
        words = meta["description"].split()
        assert words == ["the", meta["size_class"], meta["object_colour"], meta["object_class"]]
        assert meta["object_colour"] in synth.COLOURS and meta["object_class"] in synth.SHAPES
        x, y, w, h = np.loadtxt(val_set / name / "groundtruth.txt", delimiter=",")[0]
        W, H = (int(v) for v in meta["resolution"].strip("()").split(","))
        ratio = np.sqrt(w * h / (W * H))
        expected = "small" if ratio < 0.12 else "medium" if ratio < 0.22 else "large"
        assert meta["size_class"] == expected, name


def test_distractors_never_share_both_shape_and_colour():
    similar = 0
    for index in range(1, 16):
        plan = synth.plan_sequence(2, "train", index, 5)
        t = plan.target.sprite
        for d in plan.distractors:
            assert (d.sprite.shape, d.sprite.colour) != (t.shape, t.colour)
            similar += d.sprite.shape == t.shape or d.sprite.colour == t.colour
        assert all(o.sprite.colour == "occluder" for o in plan.occluders)
    assert similar > 0


def test_test_split_keeps_first_box_and_writes_full_truth_beside(tmp_path):
    split_dir = synth.generate(tmp_path, 2, 12, seed=4, split="test", size=SMALL, progress=False)
    truth = tmp_path / "test_groundtruth"
    for name in ("Synth_Test_000001", "Synth_Test_000002"):
        seq = split_dir / name
        first = _rows(seq / "groundtruth.txt")
        full = _rows(truth / f"{name}.txt")
        assert len(first) == 1 and len(full) == 12 and full[0] == first[0]
        assert not (seq / "cover.label").exists() and not (seq / "absence.label").exists()
        for label in ("cover", "absence", "cut_by_image"):
            assert len(_rows(truth / f"{name}_{label}.label")) == 12
        assert _meta(seq)["description"].startswith("the ")
    # each split is its own random stream: val sequence 1 is not test sequence 1
    val_dir = synth.generate(tmp_path / "v", 1, 12, seed=4, split="val", size=SMALL, progress=False)
    assert (val_dir / "Synth_Val_000001" / "00000001.jpg").read_bytes() != (
        split_dir / "Synth_Test_000001" / "00000001.jpg").read_bytes()


def test_refuses_to_overwrite_unless_asked(tmp_path):
    synth.generate(tmp_path, 3, 4, seed=1, size=SMALL, progress=False)
    with pytest.raises(R1TrackError, match=str(tmp_path / "val")):
        synth.generate(tmp_path, 2, 4, seed=1, size=SMALL, progress=False)
    split_dir = synth.generate(tmp_path, 2, 4, seed=2, size=SMALL, overwrite=True, progress=False)
    assert sorted(p.name for p in split_dir.iterdir()) == ["Synth_Val_000001", "Synth_Val_000002", "list.txt"]
    (split_dir / "notes.txt").write_text("mine")  # something the generator did not write
    with pytest.raises(R1TrackError, match="not written by r1track synth"):
        synth.generate(tmp_path, 2, 4, seed=2, size=SMALL, overwrite=True, progress=False)
    assert (split_dir / "notes.txt").read_text() == "mine"
    assert not list(split_dir.rglob("*.tmp"))  # atomic writes leave no temporaries


def test_command(tmp_path, capsys):
    assert cli_main(["synth", "--out", str(tmp_path), "--sequences", "1", "--frames", "3", "--seed", "0",
                     "--size", "130x90", "--split", "train", "--no-progress"]) == 0
    seq = tmp_path / "train" / "Synth_Train_000001"
    assert cv2.imread(str(seq / "00000003.jpg")).shape == (90, 130, 3)
    assert "frames/s" in capsys.readouterr().out
    assert cli_main(["synth", "--out", str(tmp_path), "--sequences", "1", "--frames", "3", "--seed", "0",
                     "--size", "big", "--no-progress"]) == 2
    assert "WxH" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("r1track.datasets.got10k") is None,
                    reason="the GOT-10k reader is not written yet")
def test_project_got10k_reader_reads_the_output(val_set, tmp_path):
    from r1track.datasets import got10k

    sequences = got10k.load(val_set.parent, "val")
    assert [s.name for s in sequences] == _rows(val_set / "list.txt")
    for seq in sequences:
        assert len(seq) == 40 and seq.gt.shape == (40, 4)
        assert seq.language == _meta(val_set / seq.name)["description"]
        cover = np.loadtxt(val_set / seq.name / "cover.label", dtype=int)
        assert np.array_equal(seq.meta["cover"], cover)
        assert np.array_equal(seq.absent, cover == 0)
    assert sequences[0].frame(0).shape[:2][::-1] == sequences[0].meta["resolution"]
    test_dir = synth.generate(tmp_path, 1, 6, seed=0, split="test", size=SMALL, progress=False)
    (test_seq,) = got10k.load(test_dir.parent, "test")
    assert np.isfinite(test_seq.gt[0]).all() and np.isnan(test_seq.gt[1:]).all()
    assert test_seq.language.startswith("the ")
