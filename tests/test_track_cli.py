"""``r1track track`` end to end: a tiny real-architecture Qwen2.5-VL checkpoint through the transformers
backend, on synthetic frames; plus the Python API and the annotated video writer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import r1track
from r1track.boxes import is_valid
from r1track.cli import main
from r1track.errors import DataError
from r1track.track import parse_box_arg, write_boxes
from r1track.video import write_annotated

W, H = 200, 150
BOX = (60.0, 40.0, 50.0, 30.0)


def _frames(n=6, moving=True):
    frames = []
    for i in range(n):
        f = np.full((H, W, 3), 30, np.uint8)
        x, y = int(BOX[0]) + (4 * i if moving else 0), int(BOX[1])
        f[y : y + int(BOX[3]), x : x + int(BOX[2])] = (220, 40, 40)
        frames.append(f)
    return frames


def _write_folder(folder: Path, frames) -> Path:
    folder.mkdir(parents=True)
    for i, f in enumerate(frames, start=1):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def tiny_model(tiny_dir):
    return tiny_dir


def _read_video(path: Path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def test_track_cli_with_a_tiny_model_writes_boxes_and_video(tmp_path, tiny_model, capsys):
    folder = _write_folder(tmp_path / "clip", _frames(5))
    out, video = tmp_path / "res" / "boxes.txt", tmp_path / "res" / "annotated.mp4"
    args = [
        "track", str(folder), "--box", ",".join(str(v) for v in BOX), "--model", str(tiny_model),
        "--out", str(out), "--video", str(video), "--max-new-tokens", "4", "--device", "cpu",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "5 frames" in printed and "frames/s" in printed and "failed answer" in printed
    lines = out.read_text().splitlines()
    assert len(lines) == 5
    assert lines[0] == "60.000,40.000,50.000,30.000"
    boxes = np.array([[float(v) for v in line.split(",")] for line in lines])
    assert is_valid(boxes).all()
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= W).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 1] + boxes[:, 3] <= H).all()
    decoded = _read_video(video)
    assert len(decoded) == 5 and decoded[0].shape == (H, W, 3)
    assert not list(video.parent.glob(".*tmp*"))  # no temporary file left behind

    # nothing is overwritten without --overwrite, and the refusal comes before any model load
    before = out.read_text()
    assert main(args) == 2
    assert "exists already" in capsys.readouterr().err
    assert out.read_text() == before
    assert main(args + ["--overwrite"]) == 0

    # text initialisation: a random-weight model cannot ground anything -> one clear line, exit 2
    text_args = ["track", str(folder), "--text", "the red box", "--model", str(tiny_model),
                 "--out", str(tmp_path / "t.txt"), "--max-new-tokens", "4", "--device", "cpu"]
    assert main(text_args) == 2
    err = capsys.readouterr().err
    assert "text initialisation failed" in err and "Traceback" not in err
    assert not (tmp_path / "t.txt").exists()


def test_track_cli_bad_inputs_are_one_line_errors(tmp_path, capsys):
    folder = _write_folder(tmp_path / "clip", _frames(2))
    assert main(["track", str(folder), "--box", "1,2,3", "--model", "x", "--out", str(tmp_path / "b.txt")]) == 2
    assert "--box must be x,y,w,h" in capsys.readouterr().err
    assert main(["track", str(tmp_path / "missing"), "--box", "1,2,3,4", "--model", "x",
                 "--out", str(tmp_path / "b.txt")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["track", str(folder), "--model", "x", "--out", str(tmp_path / "b.txt")]) == 2  # no box, no text
    assert "give the target's first box (--box x,y,w,h) or describe it (--text ...)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --box and --text are mutually exclusive
        main(["track", str(folder), "--box", "1,2,3,4", "--text", "a", "--model", "x", "--out", str(tmp_path / "b.txt")])


def test_parse_box_arg():
    np.testing.assert_array_equal(parse_box_arg("1, 2.5,3,4"), [1, 2.5, 3, 4])
    for bad in ["1,2,3", "a,b,c,d", "1,2,0,4", "1,2,nan,4"]:
        with pytest.raises(Exception, match="--box"):
            parse_box_arg(bad)


def test_track_api_on_arrays_a_frame_folder_and_a_video(tmp_path):
    frames = _frames(6)
    static = r1track.load_tracker("static").track(iter(frames), box=BOX)
    np.testing.assert_array_equal(static, np.tile(BOX, (6, 1)))
    csrt = r1track.load_tracker("csrt")
    on_arrays = csrt.track(frames, box=BOX, progress=True)
    assert on_arrays.shape == (6, 4) and on_arrays[-1, 0] > BOX[0] + 10  # it follows the moving patch
    folder = _write_folder(tmp_path / "clip", frames)
    np.testing.assert_array_equal(csrt.track(folder, box=BOX), on_arrays)  # png frames are lossless
    video = tmp_path / "clip.mp4"
    write_annotated(frames, np.full((6, 4), np.nan), video, fps=10)  # NaN boxes: the frames, no drawing
    on_video = csrt.track(str(video), box=BOX)
    assert on_video.shape == (6, 4) and abs(on_video[-1, 0] - on_arrays[-1, 0]) < 3
    with pytest.raises(DataError, match="does not exist"):
        csrt.track(tmp_path / "absent", box=BOX)
    with pytest.raises(ValueError, match="initial box"):  # baselines start from a box only
        csrt.track(frames, text="the red box")


def test_write_boxes_is_atomic_and_refuses_overwrite(tmp_path):
    path = write_boxes(tmp_path / "b.txt", np.array([[1, 2, 3, 4.12345]]))
    assert path.read_text() == "1.000,2.000,3.000,4.123\n"
    with pytest.raises(DataError, match="exists already"):
        write_boxes(path, np.zeros((1, 4)))
    write_boxes(path, np.zeros((1, 4)), overwrite=True)
    assert path.read_text() == "0.000,0.000,0.000,0.000\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"]


def test_write_annotated_draws_the_boxes(tmp_path):
    frames = [np.zeros((120, 160, 3), np.uint8) for _ in range(3)]
    boxes = np.array([[20, 30, 40, 50], [np.nan] * 4, [100, 10, 30, 30]], float)
    out = write_annotated(iter(frames), boxes, tmp_path / "v.mp4", fps=10, color=(0, 255, 0), labels=["a", "b", "c"])
    decoded = _read_video(out)
    assert len(decoded) == 3
    green = decoded[0][..., 1].astype(int) - decoded[0][..., 2].astype(int)  # BGR
    assert green[30:80, 20].mean() > 100  # the left edge of the first box is drawn
    assert green[55, 40] < 50  # inside the box is untouched
    assert decoded[1][40:110, 40:150, 1].max() < 60  # a NaN box draws nothing
    with pytest.raises(DataError, match="exists already"):
        write_annotated(frames, boxes, out)
    with pytest.raises(ValueError):
        write_annotated(frames[:2], boxes, tmp_path / "w.mp4")
    assert not (tmp_path / "w.mp4").exists() and not list(tmp_path.glob(".*"))


def test_track_cli_boxes_past_or_outside_the_frame(tmp_path, tiny_model, capsys):
    folder = _write_folder(tmp_path / "clip", _frames(3))
    base = ["--model", str(tiny_model), "--max-new-tokens", "4", "--device", "cpu"]
    for box in ["500,500,10,10", "-100,20,50,50", "0,150,10,10"]:  # no pixel of the 200x150 frame
        assert main(["track", str(folder), f"--box={box}", "--out", str(tmp_path / "x.txt")] + base) == 2
        err = capsys.readouterr().err
        assert "lies outside the first frame (200x150" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "x.txt").exists()
    # boxes far larger than the frame track, from the part of the box inside the frame
    for k, box in enumerate(["0,0,1e9,1e9", "-100,-100,4000,4000", "150,100,1e6,20"]):
        out = tmp_path / f"big{k}.txt"
        assert main(["track", str(folder), f"--box={box}", "--out", str(out)] + base) == 0
        boxes = np.array([[float(v) for v in line.split(",")] for line in out.read_text().splitlines()])
        assert boxes.shape == (3, 4) and is_valid(boxes).all()
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= W).all()
        assert (boxes[:, 1] + boxes[:, 3] <= H).all()
    capsys.readouterr()
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "big0.txt", delimiter=",")[0], [0, 0, W, H])
