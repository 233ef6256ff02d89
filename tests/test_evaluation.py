from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from r1track import datasets, evaluation, report, results, synth
from r1track.commands import eval as eval_command
from r1track.errors import R1TrackError
from r1track.trackers.base import Tracker
from r1track.trackers.baselines import KCF, Oracle, Static

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def val_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synth.generate(root, sequences=3, frames=15, seed=7, split="val", progress=False)
    return root


@pytest.fixture(scope="module")
def val_seqs(val_root):
    return datasets.load("got10k", val_root, "val")


class Jitter(Tracker):
    """A non-deterministic tracker: the initial box plus fresh random noise on every call."""

    name = "Jitter"
    deterministic = False

    def init(self, image, box=None, text=None):
        self.box = np.asarray(box, dtype=np.float64)
        self.rng = np.random.default_rng()  # unseeded: every run differs

    def update(self, image):
        return self.box + self.rng.normal(0, 2, 4)


class Sleeper(Tracker):
    """Init and update each take a fixed 10 ms."""

    name = "Sleeper"
    deterministic = True

    def init(self, image, box=None, text=None):
        time.sleep(0.01)
        self.box = np.asarray(box, dtype=np.float64)

    def update(self, image):
        time.sleep(0.01)
        return self.box.copy()


class SlowFrames:
    """A frame source that takes 50 ms per frame (a slow disk)."""

    def __init__(self, n, shape=(48, 64, 3)):
        self.n, self.shape = n, shape

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        time.sleep(0.05)
        return np.zeros(self.shape, np.uint8)


class FailsOnFrame(Tracker):
    name = "Faulty"
    deterministic = True

    def __init__(self, frame=5, nan=False):
        self.frame, self.nan = frame, nan

    def init(self, image, box=None, text=None):
        self.i, self.box = 0, np.asarray(box, dtype=np.float64)

    def update(self, image):
        self.i += 1
        if self.i == self.frame:
            if self.nan:
                return np.full(4, np.nan)
            raise ValueError("boom")
        return self.box.copy()


def test_got10k_layout_with_frame0_ground_truth(tmp_path, val_seqs):
    tdir = tmp_path / "Static"
    counts = evaluation.run(Static, val_seqs, tdir, "got10k", progress=False)
    assert counts == evaluation.RunSummary(done=3, skipped=0, repetitions=1, batched=False)
    for seq in val_seqs:
        assert sorted(p.name for p in (tdir / seq.name).iterdir()) == [f"{seq.name}_001.txt", f"{seq.name}_time.txt"]
        runs, times = results.read_got10k(tdir, seq.name, len(seq))
        assert len(runs) == 1 and times.shape == (len(seq), 1)
        np.testing.assert_allclose(runs[0][0], seq.gt[0], atol=5e-4)  # written with 3 decimals
        assert (times >= 0).all() and times[0, 0] >= 0


def test_ope_layout_with_frame0_ground_truth(tmp_path, val_seqs):
    tdir = tmp_path / "KCF"
    evaluation.run(KCF, val_seqs, tdir, "ope", progress=False)
    for seq in val_seqs:
        assert (tdir / f"{seq.name}.txt").is_file() and (tdir / "times" / f"{seq.name}_time.txt").is_file()
        boxes, times = results.read_ope(tdir, seq.name, len(seq))
        np.testing.assert_allclose(boxes[0], seq.gt[0], atol=5e-4)
        assert np.isfinite(boxes).all() and (times[1:] > 0).all()
    assert sorted(p.name for p in tdir.iterdir() if p.is_dir()) == ["times"]


def test_non_deterministic_tracker_runs_three_times_under_got10k(tmp_path, val_seqs):
    seqs = val_seqs[:2]
    counts = evaluation.run(Jitter, seqs, tmp_path / "j", "got10k", progress=False)
    assert counts.repetitions == 3
    for seq in seqs:
        runs, times = results.read_got10k(tmp_path / "j", seq.name, len(seq))
        assert len(runs) == 3 and times.shape == (len(seq), 3)
        assert not np.array_equal(runs[0], runs[1])  # independent runs
        for r in runs:
            np.testing.assert_allclose(r[0], seq.gt[0], atol=5e-4)
    # one-pass benchmarks keep a single run; an explicit count wins under GOT-10k
    assert evaluation.run(Jitter, seqs, tmp_path / "o", "ope", progress=False).repetitions == 1
    assert evaluation.run(Jitter, seqs[:1], tmp_path / "r2", "got10k", repetitions=2, progress=False).repetitions == 2
    assert len(results.got10k_run_files(tmp_path / "r2", seqs[0].name)) == 2


def test_times_cover_the_tracker_call_not_frame_loading(tmp_path):
    n = 6
    seq = datasets.Sequence("slow", SlowFrames(n), np.tile([[5.0, 5.0, 10.0, 10.0]], (n, 1)))
    boxes, times = evaluation.track_sequence(Sleeper(), seq)
    assert np.array_equal(boxes, seq.gt)
    # every frame takes 50 ms to load and 10 ms to track: only the 10 ms may show
    assert (times >= 0.0095).all(), times
    assert np.median(times) < 0.035 and (times < 0.06).all(), times


def test_resume_skips_complete_sequences_and_reruns_incomplete_ones(tmp_path, val_seqs):
    tdir = tmp_path / "Static"
    evaluation.run(Static, val_seqs, tdir, "got10k", progress=False)
    before = {s.name: (tdir / s.name / f"{s.name}_time.txt").read_bytes() for s in val_seqs}
    assert evaluation.run(Static, val_seqs, tdir, "got10k", progress=False).skipped == 3
    # a sequence missing its time file (killed between files) is incomplete and runs again
    (tdir / val_seqs[1].name / f"{val_seqs[1].name}_time.txt").unlink()
    counts = evaluation.run(Static, val_seqs, tdir, "got10k", progress=False)
    assert (counts.done, counts.skipped) == (1, 2)
    assert (tdir / val_seqs[0].name / f"{val_seqs[0].name}_time.txt").read_bytes() == before[val_seqs[0].name]
    assert evaluation.run(Static, val_seqs, tdir, "got10k", overwrite=True, progress=False).done == 3


def test_killed_cli_run_resumes_to_the_numbers_of_an_uninterrupted_run(tmp_path):
    root = tmp_path / "data"
    synth.generate(root, sequences=8, frames=25, seed=11, split="val", size=(160, 120), progress=False)
    seqs = datasets.load("got10k", root, "val")
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "r1track.cli", "eval", "--dataset", "got10k", "--root", str(root), "--split", "val",
           "--tracker", "kcf", "--results", str(tmp_path / "runs"), "--no-progress"]
    tdir = tmp_path / "runs" / "kcf"  # the name typed

    def complete():
        return [s.name for s in seqs if results.is_complete_got10k(tdir, s.name, len(s), 1)]

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not complete() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done_at_kill = complete()
    assert 1 <= len(done_at_kill) < len(seqs), "the kill must land mid-run"
    # whatever the kill left is either complete and valid, or not counted as complete
    for name in done_at_kill:
        results.read_got10k(tdir, name, len(next(s for s in seqs if s.name == name)))

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(seqs) - len(done_at_kill)} sequence(s) run, {len(done_at_kill)} already complete" in rerun.stderr
    assert "AO" in rerun.stdout  # the val split has ground truth: the score table is printed

    evaluation.run(KCF, seqs, tmp_path / "clean" / "KCF", "got10k", progress=False)
    for s in seqs:  # KCF is deterministic: identical boxes, hence identical scores
        assert results.got10k_run_file(tdir, s.name, 1).read_bytes() == \
            results.got10k_run_file(tmp_path / "clean" / "KCF", s.name, 1).read_bytes()
    resumed = report.report(seqs, "got10k", tmp_path / "runs", ["kcf"])["kcf"]["overall"]
    clean = report.report(seqs, "got10k", tmp_path / "clean", ["KCF"])["KCF"]["overall"]
    assert (resumed["ao"], resumed["sr50"], resumed["sr75"]) == (clean["ao"], clean["sr50"], clean["sr75"])


def test_parallel_workers_equal_serial_for_deterministic_trackers(tmp_path, val_seqs):
    evaluation.run(KCF, val_seqs, tmp_path / "serial", "got10k", progress=False)
    counts = evaluation.run(KCF, val_seqs, tmp_path / "parallel", "got10k", workers=2, progress=False)
    assert counts.done == 3
    for s in val_seqs:
        a = results.got10k_run_file(tmp_path / "serial", s.name, 1).read_bytes()
        b = results.got10k_run_file(tmp_path / "parallel", s.name, 1).read_bytes()
        assert a == b


def test_oracle_scores_one_and_static_much_lower(tmp_path, val_seqs):
    evaluation.run(Oracle, val_seqs, tmp_path / "Oracle", "got10k", progress=False)
    evaluation.run(Static, val_seqs, tmp_path / "Static", "got10k", progress=False)
    scores = report.report(val_seqs, "got10k", tmp_path)
    assert scores["Oracle"]["overall"]["ao"] == pytest.approx(1.0, abs=1e-6)
    assert scores["Oracle"]["overall"]["sr75"] == pytest.approx(1.0)
    assert scores["Static"]["overall"]["ao"] < 0.8


@pytest.mark.parametrize("workers", [1, 2])
def test_tracker_errors_name_sequence_and_frame(tmp_path, val_seqs, workers):
    # both sequences fail; in parallel either may be reported first
    names = "|".join(s.name for s in val_seqs[:2])
    with pytest.raises(R1TrackError, match=rf"sequence '({names})' frame 5: ValueError: boom"):
        evaluation.run(FailsOnFrame, val_seqs[:2], tmp_path / "f", "got10k", workers=workers, progress=False)
    assert not results.is_complete_got10k(tmp_path / "f", val_seqs[0].name, len(val_seqs[0]), 1)
    with pytest.raises(R1TrackError, match=rf"invalid box .* sequence '{val_seqs[0].name}' frame 3"):
        evaluation.run(lambda: FailsOnFrame(3, nan=True), val_seqs[:1], tmp_path / "n", "ope", progress=False)
    assert not (tmp_path / "n" / f"{val_seqs[0].name}.txt").exists()  # nothing written for a failed sequence


def cut(seq, n):
    """The first n frames of a sequence, with every per-frame label cut alike."""
    per_frame = lambda a: None if a is None else a[:n]
    meta = {k: (v[:n] if isinstance(v, np.ndarray) and len(v) == len(seq) else v) for k, v in seq.meta.items()}
    return dataclasses.replace(seq, frames=[seq.frames[i] for i in range(n)], gt=seq.gt[:n],
                               absent=per_frame(seq.absent), visible_ratio=per_frame(seq.visible_ratio), meta=meta)


def _mllm_oracle_factory(batches=None):
    pytest.importorskip("r1track.trackers.mllm")
    from r1track.backends.oracle import OracleBackend
    from r1track.trackers.mllm import MLLMTracker

    class CountingOracle(OracleBackend):  # the real backend; records each call's batch size
        def generate(self, requests):
            if batches is not None:
                batches.append(len(requests))
            return super().generate(requests)

    backend = CountingOracle()
    return lambda: MLLMTracker(backend)


def test_lockstep_batching_equals_one_by_one_tracking(tmp_path, val_seqs):
    # sequences of different lengths, so finished runs are replaced by waiting ones mid-way
    seqs = [cut(s, n) for s, n in zip(val_seqs, (15, 6, 10))]
    one = evaluation.run(_mllm_oracle_factory(), seqs, tmp_path / "one", "got10k", repetitions=2, progress=False)
    batches = []
    many = evaluation.run(_mllm_oracle_factory(batches), seqs, tmp_path / "batch", "got10k", repetitions=2,
                          batch_size=4, progress=False)
    assert not one.batched and many.batched and many.done == 3
    assert max(batches) == 4 and sum(batches) == 2 * sum(len(s) - 1 for s in seqs)
    for s in seqs:
        runs_a, times_a = results.read_got10k(tmp_path / "one", s.name, len(s))
        runs_b, times_b = results.read_got10k(tmp_path / "batch", s.name, len(s))
        assert len(runs_b) == 2 and all(np.array_equal(a, b) for a, b in zip(runs_a, runs_b))
        assert (times_b[1:] > 0).all()
    # both runs of the first sequence share every step, and a step's time is split evenly
    _, times_first = results.read_got10k(tmp_path / "batch", seqs[0].name, len(seqs[0]))
    assert np.array_equal(times_first[1:, 0], times_first[1:, 1])
    # the oracle backend must have tracked well, or the equality above says little
    assert report.report(seqs, "got10k", tmp_path, ["batch"])["batch"]["overall"]["ao"] > 0.8


def test_batch_size_is_ignored_for_trackers_without_prepare_commit(tmp_path, val_seqs):
    counts = evaluation.run(Static, val_seqs[:1], tmp_path / "s", "got10k", batch_size=8, progress=False)
    assert counts.batched is False and counts.done == 1


def test_select_sequences_and_defaults(val_seqs):
    names = [s.name for s in val_seqs]
    assert [s.name for s in datasets.select(val_seqs, f"{names[2]},{names[0]}")] == [names[2], names[0]]
    assert len(datasets.select(val_seqs, limit=2)) == 2
    with pytest.raises(R1TrackError, match="unknown sequence"):
        datasets.select(val_seqs, "nope")
    assert eval_command.default_results_dir("got10k", "val") == Path("runs/got10k_val")
    assert eval_command.default_results_dir("otb", None) == Path("runs/otb")
    assert eval_command.has_ground_truth(val_seqs)


def test_test_split_has_no_ground_truth_to_score(tmp_path):
    synth.generate(tmp_path, sequences=1, frames=5, seed=1, split="test", progress=False)
    seqs = datasets.load("got10k", tmp_path, "test")
    assert not eval_command.has_ground_truth(seqs)
    evaluation.run(Static, seqs, tmp_path / "runs" / "Static", "got10k", progress=False)
    assert results.is_complete_got10k(tmp_path / "runs" / "Static", seqs[0].name, 5, 1)


def test_eval_command_runs_the_mllm_tracker_in_lockstep(tmp_path, val_root, capsys):
    pytest.importorskip("r1track.trackers.mllm")
    from r1track import cli

    code = cli.main(["eval", "--dataset", "got10k", "--root", str(val_root), "--split", "val", "--tracker", "mllm",
                     "--backend", "oracle", "--batch-size", "3", "--results", str(tmp_path), "--no-progress"])
    assert code == 0
    out, err = capsys.readouterr()
    folders = [p.name for p in tmp_path.iterdir()]
    assert len(folders) == 1 and folders[0].startswith("r1track-")  # named after the model, not "mllm"
    assert "3 sequence(s) run" in err and folders[0] in out and "AO" in out
