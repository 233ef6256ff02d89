"""Dataset readers on tiny fake layouts of every benchmark (with their quirks) and on real OTB data."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import shared
from r1track import datasets
from r1track.datasets import folder, got10k, lasot, otb, tnl2k, trackingnet, uav123
from r1track.datasets.base import FrameFiles, list_frames, natural_key, read_boxes, read_values
from r1track.errors import DataError, R1TrackError

W, H = 32, 24


def grey(k: int) -> int:
    return 10 + (37 * k) % 230


def write_frames(folder: Path, names, shape=(H, W)) -> None:
    """Real JPEG/PNG files, frame k a flat grey level grey(k), so the order can be checked by decoding."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        assert cv2.imwrite(str(folder / name), np.full((*shape, 3), grey(k), np.uint8))


def copy_frames(folder: Path, names) -> None:
    """Many frames fast: one encoded JPEG written under every name (loading never decodes them)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = cv2.imencode(".jpg", np.full((H, W, 3), 99, np.uint8))[1].tobytes()
    for name in names:
        (folder / name).write_bytes(data)


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def box_lines(n: int, sep: str = ",", start: int = 0) -> str:
    return "".join(f"{start + i}{sep}{i + 1}{sep}10{sep}8\n" for i in range(n))


def level(img: np.ndarray) -> float:
    return float(img.mean())


# ---------------------------------------------------------------- shared helpers in datasets/base


def test_read_boxes_accepts_mixed_delimiters_nan_and_trailing_blank_lines(tmp_path):
    p = write_text(tmp_path / "gt.txt", "1,2,3,4\n5\t6\t7\t8\n9 10,11\t12\nNaN,NaN,NaN,NaN\n13, 14, 15, 16,\n\n\n")
    gt = read_boxes(p)
    assert gt.shape == (5, 4) and gt.dtype == np.float64
    np.testing.assert_array_equal(gt[[0, 1, 2, 4]], [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]])
    assert np.isnan(gt[3]).all()


@pytest.mark.parametrize(
    "text, line",
    [("1,2,3,4\n1,2,x,4\n", 2), ("1,2,3,4\n1,2,3\n", 2), ("1,2,3,4\n\n1,2,3,4\n", 2), ("1,2,,3,4\n", 1),
     ("1,2,3,4\n1,2,3,4,5\n1,2,3,4\n", 2)],
)
def test_read_boxes_names_file_and_line_of_a_malformed_line(tmp_path, text, line):
    p = write_text(tmp_path / "gt.txt", text)
    with pytest.raises(DataError) as e:
        read_boxes(p)
    assert e.value.line == line and f"{p}:{line}" in str(e.value)


def test_read_boxes_rejects_nan_when_asked_and_empty_files(tmp_path):
    with pytest.raises(DataError, match=":2"):
        read_boxes(write_text(tmp_path / "a.txt", "1,2,3,4\nnan,1,2,3\n"), allow_nan=False)
    with pytest.raises(DataError, match="empty"):
        read_boxes(write_text(tmp_path / "b.txt", "\n"))
    with pytest.raises(DataError, match="missing"):
        read_boxes(tmp_path / "none.txt")


def test_read_values_checks_allowed_labels(tmp_path):
    np.testing.assert_array_equal(read_values(write_text(tmp_path / "a.txt", "0,1,1,0\n")), [0, 1, 1, 0])
    np.testing.assert_array_equal(read_values(write_text(tmp_path / "b.txt", "8\n0\n3\n"), range(9)), [8, 0, 3])
    with pytest.raises(DataError) as e:
        read_values(write_text(tmp_path / "c.txt", "0\n1\n2\n"), allowed=(0, 1))
    assert e.value.line == 3


def test_frame_files_are_compact_sliceable_and_picklable(tmp_path):
    names = [f"{i}.jpg" for i in range(12)]
    files = FrameFiles(tmp_path, names)
    assert files._names is None  # stored as a numbered pattern, not a list of names
    assert [p.name for p in files] == names
    assert files[-1] == tmp_path / "11.jpg" and files[10] == tmp_path / "10.jpg"
    assert [p.name for p in files[3:6]] == ["3.jpg", "4.jpg", "5.jpg"]
    assert [p.name for p in files[::5]] == ["0.jpg", "5.jpg", "10.jpg"]
    assert list(pickle.loads(pickle.dumps(files))) == list(files)
    odd = FrameFiles(tmp_path, ["a.png", "b.png"])
    assert [p.name for p in odd] == ["a.png", "b.png"] and len(odd[1:]) == 1
    with pytest.raises(IndexError):
        files[12]


def test_list_frames_sorts_numerically_and_keeps_only_images(tmp_path):
    for name in ["10.jpg", "2.jpg", "1.jpg", "0.jpg", "notes.txt", "3.PNG"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_frames(tmp_path)] == ["0.jpg", "1.jpg", "2.jpg", "3.PNG", "10.jpg"]
    assert sorted(["f10", "f9", "f100"], key=natural_key) == ["f9", "f10", "f100"]


# ---------------------------------------------------------------- dispatch


def test_dispatch_names_and_protocols(tmp_path):
    assert datasets.DATASETS == ("got10k", "lasot", "trackingnet", "otb", "uav123", "tnl2k", "mot", "folder")
    assert datasets.protocol("got10k") == "got10k" and datasets.protocol("GOT-10k") == "got10k"
    assert datasets.protocol("mot") == "got10k"
    assert {datasets.protocol(n) for n in datasets.DATASETS if n not in ("got10k", "mot")} == {"ope"}
    with pytest.raises(R1TrackError, match="unknown dataset"):
        datasets.load("vot2020", tmp_path)
    with pytest.raises(R1TrackError, match="unknown dataset"):
        datasets.protocol("vot2020")


@pytest.mark.parametrize("name", datasets.DATASETS)
def test_a_root_without_the_layout_is_a_data_error_naming_it(tmp_path, name):
    (tmp_path / "something").mkdir()
    write_text(tmp_path / "readme.txt", "not a dataset\n")
    with pytest.raises(DataError) as e:
        datasets.load(name, tmp_path)
    assert str(tmp_path) in str(e.value) and "expected" in str(e.value)
    with pytest.raises(DataError, match="does not exist"):
        datasets.load(name, tmp_path / "absent")


# ---------------------------------------------------------------- GOT-10k


def make_got10k_sequence(split_dir: Path, name: str, n: int, gt_lines: str, labels: bool = True,
                         description: str | None = None) -> Path:
    seq = split_dir / name
    write_frames(seq, [f"{i:08d}.jpg" for i in range(1, n + 1)])
    write_text(seq / "groundtruth.txt", gt_lines)
    ini = "[METAINFO]\nurl: https://youtu.be/x\nobject_class: ant\nmotion_class: walking\nresolution: (32, 24)\n"
    if description:
        ini += f"description: {description}\n"
    write_text(seq / "meta_info.ini", ini)
    if labels:
        write_text(seq / "absence.label", "0\n0\n1\n0\n"[: 2 * n])
        write_text(seq / "cover.label", "8\n4\n0\n8\n"[: 2 * n])
        write_text(seq / "cut_by_image.label", "0\n1\n0\n0\n"[: 2 * n])
    with open(split_dir / "list.txt", "a") as f:
        f.write(name + "\n")
    return seq


@pytest.fixture
def got10k_root(tmp_path):
    root = tmp_path / "GOT-10k"
    # a w = 0 box (a real GOT-10k train quirk) is valid data
    make_got10k_sequence(root / "val", "GOT-10k_Val_000002", 4, "1,2,10,8\n2,2,0,8\n3,2,10,8\n4,2,10,8\n",
                         description="a red ant")
    make_got10k_sequence(root / "val", "GOT-10k_Val_000001", 3, box_lines(3))
    make_got10k_sequence(root / "test", "GOT-10k_Test_000001", 4, "5,6,7,8\n", labels=False)
    return root


def test_got10k_val_labels_meta_and_list_order(got10k_root):
    seqs = datasets.load("got10k", got10k_root)  # split defaults to val
    assert [s.name for s in seqs] == ["GOT-10k_Val_000002", "GOT-10k_Val_000001"]  # list.txt order
    s = seqs[0]
    assert len(s) == 4 and s.gt.shape == (4, 4) and s.gt[1, 2] == 0
    np.testing.assert_array_equal(s.absent, [False, False, True, False])
    np.testing.assert_array_equal(s.meta["cover"], [8, 4, 0, 8])
    assert s.meta["cover"].dtype.kind == "i"
    np.testing.assert_allclose(s.visible_ratio, [1.0, 0.5, 0.0, 1.0])
    np.testing.assert_array_equal(s.meta["cut_by_image"], [False, True, False, False])
    assert s.meta["dataset"] == "got10k" and s.meta["split"] == "val" and s.meta["resolution"] == (W, H)
    assert s.meta["object_class"] == "ant" and s.meta["motion_class"] == "walking"
    assert s.meta["url"] == "https://youtu.be/x" and s.meta["meta_resolution"] == (32, 24)
    assert s.language == "a red ant" and seqs[1].language is None
    assert s.frames[0].name == "00000001.jpg" and level(s.frame(3)) == pytest.approx(grey(3), abs=2)


def test_got10k_test_split_has_the_first_box_only(got10k_root):
    for seqs in (got10k.load(got10k_root, "test"), datasets.load("got10k", got10k_root / "test")):
        (s,) = seqs
        assert s.meta["split"] == "test" and len(s) == 4
        np.testing.assert_array_equal(s.init_box, [5, 6, 7, 8])
        assert np.isnan(s.gt[1:]).all() and s.absent is None and s.visible_ratio is None


def test_got10k_errors_name_the_file(got10k_root):
    with pytest.raises(DataError, match="split 'train' not found"):
        got10k.load(got10k_root, "train")
    seq = got10k_root / "val" / "GOT-10k_Val_000001"
    write_text(seq / "cover.label", "8\n8\n")
    with pytest.raises(DataError, match="cover.label: 2 labels for 3 frames"):
        got10k.load(got10k_root, "val")
    write_text(seq / "cover.label", "8\n9\n8\n")
    with pytest.raises(DataError, match=r"cover.label:2: label 9"):
        got10k.load(got10k_root, "val")
    write_text(seq / "cover.label", "8\n8\n8\n")
    write_text(seq / "groundtruth.txt", "1,2,3,4\n1,2,3,4\n1;2;3;4\n")
    with pytest.raises(DataError, match=r"groundtruth.txt:3"):
        got10k.load(got10k_root, "val")
    write_text(seq / "groundtruth.txt", "1,2,3,4\n")  # only the test split may stop after frame 0
    with pytest.raises(DataError, match="1 boxes for 3 frames"):
        got10k.load(got10k_root, "val")


def test_frames_are_decoded_on_demand_and_bad_frames_name_the_file(got10k_root):
    seq_dir = got10k_root / "val" / "GOT-10k_Val_000001"
    (seq_dir / "00000002.jpg").write_bytes(b"not a jpeg")  # loading must not notice: nothing is decoded
    s = got10k.load(got10k_root / "val")[1]
    assert len(s) == 3 and s.frame(2).shape == (H, W, 3)
    with pytest.raises(DataError, match=r"00000002\.jpg: frame file cannot be decoded"):
        s.frame(1)


def test_missing_frame_file_is_named_when_read(tmp_path):
    root = tmp_path / "UAV123"
    copy_frames(root / "data_seq" / "UAV123" / "person8", [f"{i:06d}.jpg" for i in range(1075, 1526)])
    write_text(root / "anno" / "UAV123" / "person8_2.txt", box_lines(451))
    (s,) = uav123.load(root)
    (root / "data_seq" / "UAV123" / "person8" / "001100.jpg").unlink()
    with pytest.raises(DataError, match=r"001100\.jpg: frame file is missing"):
        s.frame(25)


# ---------------------------------------------------------------- LaSOT


@pytest.fixture
def lasot_root(tmp_path):
    root = tmp_path / "LaSOT"
    for cls, k, n in [("zebra", 2, 3), ("airplane", 10, 4), ("airplane", 2, 3)]:
        seq = root / cls / f"{cls}-{k}"
        write_frames(seq / "img", [f"{i:08d}.jpg" for i in range(1, n + 2)])  # one frame more than boxes
        write_text(seq / "groundtruth.txt", box_lines(n))
        write_text(seq / "full_occlusion.txt", ",".join("1" if i == 1 else "0" for i in range(n)) + "\n")
        write_text(seq / "out_of_view.txt", ",".join("1" if i == n - 1 else "0" for i in range(n)) + "\n")
        write_text(seq / "nlp.txt", f"the {cls} number {k}\n")
    return root


def test_lasot_sequences_flags_language_and_annotated_frames(lasot_root):
    seqs = datasets.load("lasot", lasot_root)
    assert [s.name for s in seqs] == ["airplane-2", "airplane-10", "zebra-2"]
    s = seqs[1]
    assert len(s) == 4 and s.gt.shape == (4, 4)  # the extra frame on disk is not part of the sequence
    np.testing.assert_array_equal(s.absent, [False, True, False, True])  # occlusion or out of view
    assert s.language == "the airplane number 10"
    assert s.meta == {"dataset": "lasot", "split": "all", "resolution": (W, H), "object_class": "airplane"}
    assert level(s.frame(3)) == pytest.approx(grey(3), abs=2)


def test_lasot_list_file_selects_the_split(lasot_root):
    write_text(lasot_root / "testing_set.txt", "zebra-2\nairplane-10\n")
    assert [s.name for s in lasot.load(lasot_root, "test")] == ["zebra-2", "airplane-10"]
    assert len(lasot.load(lasot_root, "train")) == 3  # no training_set.txt: every sequence found
    write_text(lasot_root / "testing_set.txt", "zebra-2\nzebra-9\n")
    with pytest.raises(DataError, match=r"testing_set.txt:2: sequence 'zebra-9'"):
        lasot.load(lasot_root, "test")


def test_lasot_flag_length_mismatch_names_the_file(lasot_root):
    write_text(lasot_root / "zebra" / "zebra-2" / "out_of_view.txt", "0,0\n")
    with pytest.raises(DataError, match="out_of_view.txt: 2 flags for 3"):
        lasot.load(lasot_root)


# ---------------------------------------------------------------- TrackingNet


@pytest.fixture
def trackingnet_root(tmp_path):
    root = tmp_path / "TrackingNet"
    write_frames(root / "TEST" / "frames" / "seqB", [f"{i}.jpg" for i in range(11)])  # 0..10, unpadded
    write_text(root / "TEST" / "anno" / "seqB.txt", "1,2,3,4\n")
    for chunk, name in [("TRAIN_10", "t10"), ("TRAIN_2", "t2")]:
        write_frames(root / chunk / "frames" / name, [f"{i}.jpg" for i in range(3)])
        write_text(root / chunk / "anno" / f"{name}.txt", box_lines(3))
    return root


def test_trackingnet_numeric_frame_order_and_test_first_box(trackingnet_root):
    (s,) = datasets.load("trackingnet", trackingnet_root)  # TEST is the default split
    assert len(s) == 11 and [p.name for p in s.frames][:3] == ["0.jpg", "1.jpg", "2.jpg"]
    assert s.frames[10].name == "10.jpg"
    assert [round(level(s.frame(i))) for i in (2, 10)] == pytest.approx([grey(2), grey(10)], abs=2)
    np.testing.assert_array_equal(s.init_box, [1, 2, 3, 4])
    assert np.isnan(s.gt[1:]).all()
    assert s.meta["split"] == "test" and s.meta["resolution"] == (W, H) and s.meta["chunk"] == "TEST"


def test_trackingnet_train_chunks_and_single_chunk_root(trackingnet_root):
    train = trackingnet.load(trackingnet_root, "train")
    assert [s.meta["chunk"] for s in train] == ["TRAIN_2", "TRAIN_10"]  # chunks in numeric order
    assert [s.name for s in trackingnet.load(trackingnet_root / "TRAIN_10")] == ["t10"]
    assert trackingnet.load(trackingnet_root, "train_2")[0].name == "t2"
    write_text(trackingnet_root / "TRAIN_2" / "anno" / "t2.txt", "1,2,3,4\n")
    with pytest.raises(DataError, match="t2.txt: 1 boxes for 3 frames"):  # only TEST may stop early
        trackingnet.load(trackingnet_root, "train")
    with pytest.raises(R1TrackError, match="unknown TrackingNet split"):
        trackingnet.load(trackingnet_root, "val")


# ---------------------------------------------------------------- OTB


def test_otb_delimiters_ranges_two_targets_and_attributes(tmp_path):
    root = tmp_path / "OTB100"
    write_frames(root / "Basketball" / "img", [f"{i:04d}.jpg" for i in range(1, 5)])
    write_text(root / "Basketball" / "groundtruth_rect.txt", "1,2,3,4\n5\t6\t7\t8\n9,10 11,12\n13\t14, 15 16\n")
    write_text(root / "Basketball" / "attrs.txt", "SV, DEF, FM, DEF\n")
    copy_frames(root / "Football1" / "img", [f"{i:04d}.jpg" for i in range(1, 82)])  # boxes for 1-74 only
    write_text(root / "Football1" / "groundtruth_rect.txt", box_lines(74))
    write_frames(root / "Tiger1" / "img", [f"{i:04d}.jpg" for i in range(1, 11)])  # first 5 omitted
    write_text(root / "Tiger1" / "groundtruth_rect.txt", box_lines(10, start=100))
    write_frames(root / "Jogging" / "img", [f"{i:04d}.jpg" for i in range(1, 4)])
    write_text(root / "Jogging" / "groundtruth_rect.1.txt", box_lines(3))
    write_text(root / "Jogging" / "groundtruth_rect.2.txt", box_lines(3, "\t", start=50))
    write_frames(root / "Board" / "img", [f"{i:05d}.jpg" for i in range(1, 4)])
    write_text(root / "Board" / "groundtruth_rect.txt", box_lines(3))
    write_frames(root / "Human4" / "img", [f"{i:04d}.jpg" for i in range(1, 3)])
    write_text(root / "Human4" / "groundtruth_rect.2.txt", box_lines(2))  # its only target file
    (root / "anno").mkdir()  # not a sequence folder: skipped

    seqs = {s.name: s for s in datasets.load("otb", root)}
    assert list(seqs) == ["Basketball", "Board", "Football1", "Human4", "Jogging-1", "Jogging-2", "Tiger1"]
    b = seqs["Basketball"]
    np.testing.assert_array_equal(b.gt, np.arange(1, 17).reshape(4, 4))
    assert b.meta == {"dataset": "otb", "split": "test", "resolution": (W, H), "attributes": ["SV", "DEF", "FM"]}
    assert len(seqs["Football1"]) == 74 and seqs["Football1"].frames[-1].name == "0074.jpg"
    t = seqs["Tiger1"]
    assert len(t) == 5 and t.frames[0].name == "0006.jpg" and t.gt[0, 0] == 105 and t.gt[-1, 0] == 109
    assert level(t.frame(0)) == pytest.approx(grey(5), abs=2)
    assert seqs["Jogging-2"].gt[0, 0] == 50 and seqs["Jogging-1"].frames[2] == seqs["Jogging-2"].frames[2]
    assert seqs["Board"].frames[0].name == "00001.jpg"
    # a single sequence folder is a root too
    assert [s.name for s in otb.load(root / "Jogging")] == ["Jogging-1", "Jogging-2"]


def test_otb_too_few_boxes_for_the_range_is_an_error(tmp_path):
    copy_frames(tmp_path / "Football1" / "img", [f"{i:04d}.jpg" for i in range(1, 82)])
    write_text(tmp_path / "Football1" / "groundtruth_rect.txt", box_lines(70))
    with pytest.raises(DataError, match="70 boxes for the 74 frames 1-74"):
        otb.load(tmp_path)


def test_real_otb_couple_and_football1():
    root = shared("data/otb", "the real OTB files' quirks (Couple, Football1)")
    seqs = {s.name: s for s in otb.load(root)}
    couple, football = seqs["Couple"], seqs["Football1"]
    assert len(couple) == 140 and couple.gt.shape == (140, 4) and couple.meta["resolution"] == (320, 240)
    np.testing.assert_array_equal(couple.init_box, [51, 47, 25, 62])  # tab-separated file
    assert couple.frame(139).shape == (240, 320, 3)
    assert "SV" in couple.meta["attributes"]
    assert len(list_frames(root / "Football1" / "img")) == 81
    assert len(football) == 74 and football.frames[-1].name == "0074.jpg"
    np.testing.assert_array_equal(football.init_box, [153, 105, 26, 43])
    assert not np.isnan(football.gt).any()


# ---------------------------------------------------------------- UAV123


@pytest.fixture
def uav_root(tmp_path):
    root = tmp_path / "UAV123"
    copy_frames(root / "data_seq" / "UAV123" / "person8", [f"{i:06d}.jpg" for i in range(1, 1526)])
    write_text(root / "anno" / "UAV123" / "person8_2.txt", box_lines(451))  # frames 1075-1525 of person8
    write_frames(root / "data_seq" / "UAV123" / "mini", [f"{i:06d}.jpg" for i in range(1, 5)])
    write_text(root / "anno" / "UAV123" / "mini.txt", "1,2,3,4\nNaN,NaN,NaN,NaN\n3,2,3,4\nnan,nan,nan,nan\n")
    return root


def test_uav123_nan_lines_are_absent_and_sub_ranges_follow_the_toolkit(uav_root):
    seqs = {s.name: s for s in datasets.load("uav123", uav_root)}
    assert list(seqs) == ["mini", "person8_2"]
    m = seqs["mini"]
    np.testing.assert_array_equal(m.absent, [False, True, False, True])
    assert np.isnan(m.gt[[1, 3]]).all() and m.gt[2, 0] == 3
    p = seqs["person8_2"]
    assert len(p) == 451 and p.frames[0].name == "001075.jpg" and p.frames[-1].name == "001525.jpg"
    assert not p.absent.any() and p.meta == {"dataset": "uav123", "split": "UAV123", "resolution": (W, H)}
    assert p.frame(0).shape == (H, W, 3)


def test_uav123_table_and_errors(uav_root):
    ranges = uav123.frame_ranges()
    assert len(ranges) == 123 and ranges["bird1_2"] == ("bird1", 775, 1477) and ranges["car1_s"][2] == 1475
    assert len(uav123.frame_ranges("UAV20L")) == 20
    write_text(uav_root / "anno" / "UAV123" / "mini.txt", "1,2,3,4\n")
    with pytest.raises(DataError, match="mini.txt: 1 boxes for 4 frames"):
        uav123.load(uav_root)
    write_text(uav_root / "anno" / "UAV123" / "bird1_2.txt", "1,2,3,4\n")
    with pytest.raises(DataError, match="bird1"):
        uav123.load(uav_root)
    with pytest.raises(R1TrackError, match="unknown UAV123 split"):
        uav123.load(uav_root, "uav10")


def test_uav20l_uses_its_own_annotations(uav_root):
    write_text(uav_root / "anno" / "UAV20L" / "mini.txt", box_lines(4))
    (s,) = uav123.load(uav_root, "UAV20L")
    assert s.name == "mini" and len(s) == 4 and s.meta["split"] == "UAV20L" and not s.absent.any()


# ---------------------------------------------------------------- TNL2K


def test_tnl2k_language_png_frames_and_nested_subsets(tmp_path):
    root = tmp_path / "TNL2K"
    write_frames(root / "TNL2K_test_subset_p1" / "Bike_1" / "imgs", [f"{i:05d}.png" for i in range(1, 4)])
    write_text(root / "TNL2K_test_subset_p1" / "Bike_1" / "groundtruth.txt", box_lines(3))
    write_text(root / "TNL2K_test_subset_p1" / "Bike_1" / "language.txt", "the white bike on the left\n")
    write_frames(root / "Ant_2" / "imgs", [f"{i:05d}.jpg" for i in range(1, 3)])
    write_text(root / "Ant_2" / "groundtruth.txt", box_lines(2))
    seqs = datasets.load("tnl2k", root)
    assert [s.name for s in seqs] == ["Ant_2", "Bike_1"]
    b = seqs[1]
    assert b.language == "the white bike on the left" and seqs[0].language is None
    assert len(b) == 3 and b.frames[0].suffix == ".png" and level(b.frame(2)) == pytest.approx(grey(2), abs=1)
    assert b.meta == {"dataset": "tnl2k", "split": "test", "resolution": (W, H)}
    write_text(root / "Ant_2" / "groundtruth.txt", box_lines(3))
    with pytest.raises(DataError, match="3 boxes for 2 frames"):
        tnl2k.load(root)


# ---------------------------------------------------------------- generic folders and videos


def write_video(path: Path, n: int, fourcc: str = "MJPG") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (W, H))
    assert writer.isOpened()
    for k in range(n):
        writer.write(np.full((H, W, 3), grey(k), np.uint8))
    writer.release()
    return path


def test_folder_of_frames_with_short_ground_truth(tmp_path):
    write_frames(tmp_path / "clip", [f"frame{i}.jpg" for i in range(12)])  # natural order: frame2 < frame10
    write_text(tmp_path / "clip" / "groundtruth.txt", "1 2 3 4\n5,6,7,8\n")
    (s,) = datasets.load("folder", tmp_path / "clip")
    assert s.name == "clip" and len(s) == 12 and s.frames[10].name == "frame10.jpg"
    np.testing.assert_array_equal(s.gt[:2], [[1, 2, 3, 4], [5, 6, 7, 8]])
    assert np.isnan(s.gt[2:]).all()
    assert s.meta == {"dataset": "folder", "split": "all", "resolution": (W, H)}
    assert level(s.frame(10)) == pytest.approx(grey(10), abs=2)
    write_text(tmp_path / "clip" / "groundtruth.txt", box_lines(13))
    with pytest.raises(DataError, match="13 boxes but only 12 frames"):
        folder.load(tmp_path / "clip")
    write_text(tmp_path / "clip" / "groundtruth.txt", "")
    with pytest.raises(DataError, match="empty"):
        folder.load(tmp_path / "clip")


def test_folder_of_sequences_img_subfolders_and_videos(tmp_path):
    write_frames(tmp_path / "a" / "img", [f"{i:03d}.png" for i in range(3)])
    write_text(tmp_path / "a" / "groundtruth.txt", box_lines(3, "\t"))
    write_text(tmp_path / "a" / "language.txt", "a grey square\n")
    write_frames(tmp_path / "b" / "imgs", ["1.bmp", "2.bmp"])
    write_video(tmp_path / "c.avi", 5)
    write_text(tmp_path / "c.txt", box_lines(5))
    seqs = folder.load(tmp_path)
    assert [s.name for s in seqs] == ["a", "b", "c"]
    assert seqs[0].language == "a grey square" and seqs[0].gt[2, 0] == 2
    assert len(seqs[1]) == 2 and np.isnan(seqs[1].gt).all()  # no ground truth: NaN boxes
    v = seqs[2]
    assert len(v) == 5 and v.meta["resolution"] == (W, H) and v.gt[4, 0] == 4
    assert [round(level(f)) for f in v.iter_frames()] == pytest.approx([grey(k) for k in range(5)], abs=4)


def test_video_file_root_and_open_frames(tmp_path):
    video = write_video(tmp_path / "walk.mp4", 4, "mp4v")
    write_text(tmp_path / "groundtruth.txt", "1,2,3,4\n")
    (s,) = datasets.load("folder", video)
    assert s.name == "walk" and len(s) == 4 and s.meta["resolution"] == (W, H)
    assert s.gt[0, 3] == 4 and np.isnan(s.gt[1:]).all()
    assert level(s.frame(3)) == pytest.approx(grey(3), abs=6)
    frames, res = folder.open_frames(video)
    assert len(frames) == 4 and res == (W, H)
    write_frames(tmp_path / "frames", ["2.jpg", "10.jpg", "1.jpg"])
    frames, res = folder.open_frames(tmp_path / "frames")
    assert [p.name for p in frames] == ["1.jpg", "2.jpg", "10.jpg"] and res == (W, H)


def test_unreadable_inputs_are_data_errors_naming_them(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no frames"):
        folder.open_frames(tmp_path / "empty")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DataError) as e:
        folder.open_frames(bad)
    assert "broken.mp4" in str(e.value)
    with pytest.raises(DataError, match="does not exist"):
        folder.open_frames(tmp_path / "nothing")
    with pytest.raises(DataError, match="not a video file"):
        folder.load(write_text(tmp_path / "notes.txt", "hi"))
