"""Bad or suspicious input met through the commands a user runs: degenerate ground truth, a missing or
truncated frame, a box OpenCV's trackers refuse, and who runs how often (the determinism default)."""

from __future__ import annotations

import numpy as np
import pytest

from r1track import datasets, evaluation, synth
from r1track.cli import main
from r1track.trackers import TRACKERS
from r1track.trackers.base import Tracker
from r1track.trackers.baselines import CSRT, KCF, Oracle, Static
from r1track.trackers.mllm import MLLMTracker


@pytest.fixture()
def split(tmp_path):
    """A fresh synthetic GOT-10k val split (2 sequences x 10 frames of 400x300) each test may damage."""
    return synth.generate(tmp_path / "data", sequences=2, frames=10, seed=5, split="val", progress=False)


def _set_line(path, number, text):
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _eval(split, tmp_path, tracker="csrt"):
    return main(["eval", "--dataset", "got10k", "--root", str(split), "--tracker", tracker,
                 "--results", str(tmp_path / "runs"), "--no-progress"])


@pytest.mark.parametrize("first_box", ["10,10,0,20", "10,10,-5,20", "10,10,30,0", "nan,nan,nan,nan"])
def test_degenerate_first_box_is_a_one_line_error_naming_file_and_line(split, tmp_path, capsys, first_box):
    gt = split / "Synth_Val_000002" / "groundtruth.txt"
    _set_line(gt, 1, first_box)
    for command in (["eval", "--tracker", "csrt"], ["report"]):
        args = [command[0], "--dataset", "got10k", "--root", str(split), "--results", str(tmp_path / "runs")]
        assert main(args + command[1:]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"r1track {command[0]}: error: {gt}:1: the first frame's box")
        assert "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_degenerate_later_box_is_a_warning_and_the_run_goes_on(split, tmp_path, capsys):
    gt = split / "Synth_Val_000001" / "groundtruth.txt"
    _set_line(gt, 4, "50,60,-3,10")
    _set_line(gt, 7, "50,60,10,0")
    assert _eval(split, tmp_path) == 0
    err = capsys.readouterr().err
    assert (f"r1track eval: warning: {gt}: 2 box(es) after the first frame with zero or negative width or "
            "height (line 4, 7)") in err
    assert len((tmp_path / "runs" / "csrt" / "Synth_Val_000001" / "Synth_Val_000001_001.txt")
               .read_text().splitlines()) == 10


def test_a_box_opencv_refuses_does_not_abort_the_run(split, tmp_path, capsys):
    # CSRT asserts inside OpenCV on a 300 x 1 box; the sequence keeps its first box, the run completes
    _set_line(split / "Synth_Val_000001" / "groundtruth.txt", 1, "10,10,300,1")
    assert _eval(split, tmp_path) == 0
    captured = capsys.readouterr()
    assert "warning: CSRT cannot start from the box [10.0, 10.0, 300.0, 1.0] on a 400x300 frame" in captured.err
    assert "AO" in captured.out
    first = np.loadtxt(tmp_path / "runs" / "csrt" / "Synth_Val_000001" / "Synth_Val_000001_001.txt", delimiter=",")
    np.testing.assert_array_equal(first, np.tile([10, 10, 300, 1], (10, 1)))
    second = np.loadtxt(tmp_path / "runs" / "csrt" / "Synth_Val_000002" / "Synth_Val_000002_001.txt", delimiter=",")
    assert len(np.unique(second, axis=0)) > 1  # the other sequence is tracked as usual


def test_missing_frame_is_named(split, tmp_path, capsys):
    (split / "Synth_Val_000002" / "00000007.jpg").unlink()
    assert _eval(split, tmp_path) == 2
    err = capsys.readouterr().err.strip()
    gt = split / "Synth_Val_000002" / "groundtruth.txt"
    assert err == (f"r1track eval: error: {gt}: 10 boxes for 9 frames: frame file 00000007.jpg missing in "
                   f"{split / 'Synth_Val_000002'}")


def test_truncated_jpeg_frame_is_named_in_a_warning(split, tmp_path, capsys):
    frame = split / "Synth_Val_000001" / "00000004.jpg"
    data = frame.read_bytes()
    frame.write_bytes(data[: len(data) // 2])
    assert _eval(split, tmp_path) == 0
    err = capsys.readouterr().err
    assert f"r1track eval: warning: {frame}: JPEG frame is truncated" in err
    assert err.count("JPEG frame is truncated") == 1  # one frame, one warning
    # a complete JPEG followed by bytes a camera appended is not truncated
    frame.write_bytes(data + b"\x00" * 300)
    assert _eval(split, tmp_path / "again") == 0
    assert "JPEG frame is truncated" not in capsys.readouterr().err


class Undeclared(Tracker):
    """A tracker ported without saying whether it is deterministic."""

    name = "Undeclared"

    def init(self, image, box=None, text=None):
        self.box = np.asarray(box, dtype=np.float64)

    def update(self, image):
        return self.box.copy()


def test_trackers_are_stochastic_unless_they_say_otherwise(tmp_path, split):
    assert Tracker.deterministic is False  # the got10k toolkit's default
    sequences = datasets.load("got10k", split)
    counts = evaluation.run(Undeclared, sequences, tmp_path / "Undeclared", "got10k", progress=False)
    assert counts.repetitions == 3
    assert sorted(p.name for p in (tmp_path / "Undeclared" / "Synth_Val_000001").glob("*_00?.txt")) == [
        "Synth_Val_000001_001.txt", "Synth_Val_000001_002.txt", "Synth_Val_000001_003.txt"]
    # every tracker we ship states its own determinism
    ours = {"csrt": CSRT, "kcf": KCF, "oracle": Oracle, "static": Static, "mllm": MLLMTracker}
    assert sorted(ours) == sorted(TRACKERS)
    for cls in ours.values():
        assert any("deterministic" in vars(k) for k in cls.__mro__ if k is not Tracker), cls
    counts = evaluation.run(Static, sequences, tmp_path / "Static", "got10k", progress=False)
    assert counts.repetitions == 1
