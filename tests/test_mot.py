"""The MOTChallenge reader through the commands: a small MOT16-style and MOT15-style fixture made here
(identities, gaps, ignored rows, shared frames), and the real MOT15 videos of ../shared when present."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from r1track import datasets
from r1track.boxes import is_valid
from r1track.cli import main
from r1track.datasets.base import FrameFiles
from r1track.errors import DataError, R1TrackError
from r1track.metrics import got10k_iou

W, H = 96, 64
REAL_MOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "mot"


def _box(identity: int, frame: int) -> list[float]:
    return [4.0 + 3 * identity + 2 * frame, 6.0 + identity, 14.0 + identity, 20.0]


def _write_video(folder: Path, n_frames: int, rows: list[str], seqinfo: bool = True) -> Path:
    (folder / "img1").mkdir(parents=True)
    (folder / "gt").mkdir()
    for i in range(1, n_frames + 1):
        frame = np.full((H, W, 3), 30 + 10 * i, np.uint8)
        cv2.imwrite(str(folder / "img1" / f"{i:06d}.jpg"), frame)
    (folder / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    if seqinfo:
        (folder / "seqinfo.ini").write_text(
            f"[Sequence]\nname={folder.name}\nimDir=img1\nframeRate=10\nseqLength={n_frames}\n"
            f"imWidth={W}\nimHeight={H}\nimExt=.jpg\n")
    return folder


def _row(frame, identity, flag=1, cls=1, vis=1.0, box=None):
    x, y, w, h = box or _box(identity, frame)
    return f"{frame},{identity},{x},{y},{w},{h},{flag},{cls},{vis}"


@pytest.fixture()
def mot_root(tmp_path):
    """VID-A (MOT16+ columns, 14 frames) and VID-B (MOT15: -1 in flag/class/visibility, no seqinfo.ini)."""
    rows = []
    rows += [_row(f, 1) for f in range(2, 14) if f not in (5, 6)]  # id 1: frames 2-13, not annotated in 5-6
    rows += [_row(f, 2, flag=0 if f == 3 else 1, vis=0.0 if f in (7, 14) else 0.6) for f in range(1, 15)]
    rows += [_row(f, 3, cls=7) for f in range(1, 15)]  # a static person: not a pedestrian, ignored
    rows += [_row(f, 4) for f in (8, 9, 10)]  # too short for the default minimum length
    rows += [_row(f, 5, flag=0) for f in range(1, 15)]  # marked "ignore"
    _write_video(tmp_path / "mot" / "VID-A", 14, rows[::-1])  # any row order
    mot15 = [f"{f},7,{','.join(str(v) for v in _box(7, f))},1,-1,-1,-1" for f in range(1, 11)]
    _write_video(tmp_path / "mot" / "VID-B", 10, mot15, seqinfo=False)
    return tmp_path / "mot"


def test_one_sequence_per_identity_with_gaps_absent_and_frames_shared(mot_root):
    seqs = {s.name: s for s in datasets.load("mot", mot_root)}
    assert sorted(seqs) == ["VID-A-1", "VID-A-2", "VID-B-7"]  # id 3 (class 7), 4 (short), 5 (flag 0) left out
    a1, a2, b7 = seqs["VID-A-1"], seqs["VID-A-2"], seqs["VID-B-7"]

    # identity 1: frames 2..13, its gap (frames 5, 6) absent with NaN boxes
    assert len(a1) == 12 and a1.meta["first_frame"] == 2 and a1.meta["identity"] == 1
    assert a1.frames[0] == mot_root / "VID-A" / "img1" / "000002.jpg"
    gap = np.array([f in (5, 6) for f in range(2, 14)])
    np.testing.assert_array_equal(a1.absent, gap)
    assert np.isnan(a1.gt[gap]).all() and np.isfinite(a1.gt[~gap]).all()
    np.testing.assert_array_equal(a1.gt[0], _box(1, 2))
    np.testing.assert_array_equal(a1.gt[-1], _box(1, 13))
    np.testing.assert_array_equal(a1.visible_ratio, np.where(gap, 0.0, 1.0))

    # identity 2: flag-0 row (frame 3) ignored -> absent; visibility 0 (frame 7) absent but its box kept;
    # the sequence ends at the last visible frame (13), not at the invisible frame 14
    assert a2.meta["first_frame"] == 1 and len(a2) == 13
    np.testing.assert_array_equal(np.flatnonzero(a2.absent), [2, 6])
    assert np.isnan(a2.gt[2]).all()
    np.testing.assert_array_equal(a2.gt[6], _box(2, 7))
    assert a2.visible_ratio[0] == pytest.approx(0.6)

    # frames are shared, not copied: the same file for both identities, paths held as a number range
    assert isinstance(a1.frames, FrameFiles) and a1.frames[3] == a2.frames[4]
    assert a1.frame(3).tobytes() == a2.frame(4).tobytes()

    # MOT15 (-1 columns, no seqinfo.ini): every row kept, visibility -1 counts as visible
    assert len(b7) == 10 and not b7.absent.any() and (b7.visible_ratio == 1).all()
    assert b7.meta["resolution"] == (W, H) and a1.meta["resolution"] == (W, H) and a1.meta["fps"] == 10.0
    assert datasets.protocol("mot") == "got10k"

    # the minimum track length counts visible annotated frames
    names = [s.name for s in datasets.load("mot", mot_root, min_length=3)]
    assert names == ["VID-A-1", "VID-A-2", "VID-A-4", "VID-B-7"]
    assert [s.name for s in datasets.load("mot", mot_root / "VID-B")] == ["VID-B-7"]  # one video folder


def _scored_ious(seq, box):
    """GOT-10k rule by hand: frames after the first where the target is seen, static box against truth."""
    keep = np.arange(len(seq)) > 0
    keep &= seq.visible_ratio > 0
    gt = seq.gt[keep]
    return got10k_iou(np.tile(box, (len(gt), 1)), gt, seq.meta["resolution"])


def test_eval_and_report_score_only_the_frames_where_the_target_is_seen(mot_root, tmp_path, capsys):
    runs = tmp_path / "runs"
    base = ["--dataset", "mot", "--root", str(mot_root), "--results", str(runs)]
    assert main(["eval", *base, "--tracker", "static", "--no-progress"]) == 0
    assert main(["report", *base, "--json", str(tmp_path / "s.json")]) == 0
    capsys.readouterr()
    scores = json.loads((tmp_path / "s.json").read_text())["static"]
    seqs = datasets.load("mot", mot_root)
    ious = np.concatenate([_scored_ious(s, s.gt[0]) for s in seqs])
    assert scores["overall"]["num_frames"] == len(ious) == 9 + 10 + 9
    assert scores["overall"]["ao"] == pytest.approx(float(ious.mean()), abs=1e-12)
    assert 0 < scores["overall"]["ao"] < 1
    results = np.loadtxt(runs / "static" / "VID-A-1" / "VID-A-1_001.txt", delimiter=",")
    assert results.shape == (12, 4)  # every frame of the identity's span gets a box, absent ones too

    # the option on the commands: a shorter minimum brings identity 4 in; a bad value is one line
    assert main(["eval", *base, "--tracker", "static", "--no-progress", "--min-track-length", "3"]) == 0
    assert (runs / "static" / "VID-A-4").is_dir()
    capsys.readouterr()
    assert main(["eval", *base, "--tracker", "static", "--min-track-length", "1"]) == 2
    assert "at least 2 frames" in capsys.readouterr().err
    assert main(["report", "--dataset", "got10k", "--root", str(mot_root), "--results", str(runs),
                 "--min-track-length", "5"]) == 2
    assert "got10k dataset takes no min_length option" in capsys.readouterr().err


def test_build_pairs_and_track_on_identities(mot_root, tmp_path, capsys):
    from r1track.training.pairs import load_pairs

    out = tmp_path / "pairs"
    assert main(["build-pairs", "--dataset", "mot", "--root", str(mot_root), "--out", str(out),
                 "--samples", "30", "--sizes", "64", "--min-track-length", "3"]) == 0
    capsys.readouterr()
    ds = load_pairs(out, cache_dir=str(tmp_path / "hf"))
    seqs = {s.name: s for s in datasets.load("mot", mot_root, min_length=3)}
    assert set(ds["sequence"]) <= set(seqs) and len(set(ds["sequence"])) == 4
    for name, ids in zip(ds["sequence"], ds["frame_ids"]):
        assert is_valid(seqs[name].gt[ids]).all()  # never a frame without a box
    assert len({f for n, ids in zip(ds["sequence"], ds["frame_ids"]) if n == "VID-A-1" for f in ids} & {3, 4}) == 0

    boxes = tmp_path / "a1.txt"
    assert main(["track", "--dataset", "mot", "--root", str(mot_root), "--sequence", "VID-A-1", "--model", "nano",
                 "--out", str(boxes), "--device", "cpu"]) == 0
    assert "12 frames" in capsys.readouterr().out
    tracked = np.loadtxt(boxes, delimiter=",")
    assert tracked.shape == (12, 4) and is_valid(tracked).all()
    np.testing.assert_allclose(tracked[0], _box(1, 2))
    assert main(["track", "--dataset", "mot", "--root", str(mot_root), "--sequence", "VID-A-9", "--model", "nano",
                 "--out", str(tmp_path / "x.txt")]) == 2
    assert "no sequence 'VID-A-9'" in capsys.readouterr().err


@pytest.mark.parametrize("row, line, message", [
    ("2,1,10,10,5,5,1,1,1\n2,1,11,10,5,5,1,1,1", 2, "identity 1 has two boxes in frame 2"),
    ("20,1,10,10,5,5,1,1,1", 1, "frame 20 is past the video's 14 frames"),
    ("1,1,10,10,5,5,1,1,1\n\n0,2,10,10,5,5,1,1,1", 3, "frame numbers start at 1"),
    ("1,1,10,10,5,5,1,1,1\n\n1,2,ten,10,5,5,1,1,1", 3, "expected frame,id,x,y,w,h"),
])
def test_bad_ground_truth_names_file_and_line(tmp_path, capsys, row, line, message):
    folder = _write_video(tmp_path / "VID", 14, [row])
    with pytest.raises(DataError, match=message) as err:
        datasets.load("mot", folder, min_length=2)
    assert err.value.path == folder / "gt" / "gt.txt" and err.value.line == line
    assert main(["eval", "--dataset", "mot", "--root", str(folder), "--tracker", "static",
                 "--results", str(tmp_path / "r")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_missing_frames_and_layout_errors(tmp_path):
    folder = _write_video(tmp_path / "V", 6, [_row(f, 1) for f in range(1, 7)])
    (folder / "img1" / "000004.jpg").unlink()
    with pytest.raises(DataError, match=r"1 of the video's 6 frames are missing: 000004.jpg"):
        datasets.load("mot", folder, min_length=2)
    with pytest.raises(DataError, match="not a MOTChallenge folder"):
        datasets.load("mot", tmp_path / "V" / "gt")
    with pytest.raises(R1TrackError, match="no identity has 10 or more"):
        datasets.load("mot", _write_video(tmp_path / "W", 3, [_row(f, 1) for f in range(1, 4)]))
    (tmp_path / "T" / "test" / "X" / "img1").mkdir(parents=True)
    with pytest.raises(DataError, match="not a MOTChallenge folder"):
        datasets.load("mot", tmp_path / "T")  # a benchmark root: train/ by default
    (tmp_path / "T" / "test" / "X" / "img1" / "000001.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="ground-truth file is missing"):
        datasets.load("mot", tmp_path / "T", "test")


@pytest.mark.skipif(not REAL_MOT.is_dir(), reason=f"real MOT15 videos not found at {REAL_MOT}")
def test_real_mot15_videos():
    seqs = datasets.load("mot", REAL_MOT)
    assert len(seqs) == 28 and sum(int((~s.absent).sum()) for s in seqs) == 3463  # the data's README
    names = {s.name for s in seqs}
    assert "PETS09-S2L1-3" in names and "TUD-Stadtmitte-2" in names
    pets3 = next(s for s in seqs if s.name == "PETS09-S2L1-3")
    assert pets3.frames[0].name == "000265.jpg" and pets3.meta["resolution"] == (640, 480)


def test_rows_with_another_column_count_name_their_line(tmp_path):
    folder = _write_video(tmp_path / "VID", 4, [_row(1, 1), _row(2, 1), "3,1,10,10,5,5"])
    with pytest.raises(DataError, match="6 columns where the first row has 9") as err:
        datasets.load("mot", folder, min_length=2)
    assert err.value.line == 3
