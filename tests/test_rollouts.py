"""Closed-loop (rollout) pairs, the absent answer ``[]`` in rewards and in the tracker."""

from __future__ import annotations

import functools
import json
from collections import Counter

import numpy as np
import pytest

from r1track import datasets, evaluation, results
from r1track.backends.base import Backend
from r1track.backends.oracle import OracleBackend
from r1track.cli import main
from r1track.crops import Crop
from r1track.datasets.base import Sequence
from r1track.errors import R1TrackError
from r1track.families import get_family
from r1track.parsing import parse_absent
from r1track.trackers.mllm import MLLMTracker
from r1track.training.rewards import REWARDS
from r1track.training.rollouts import RolloutOptions, crop_answer, rollout_rows


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from r1track.synth import generate

    root = tmp_path_factory.mktemp("synth")
    generate(root, sequences=3, frames=14, seed=4, split="train", progress=False)
    return root, datasets.load("got10k", root, "train")


def _frames_seq(gt, absent=None, n=None):
    n = n or len(gt)
    frames = [np.zeros((200, 300, 3), np.uint8) for _ in range(n)]
    return Sequence("s", frames, np.asarray(gt, float), absent=absent)


def test_crop_answer_maps_the_truth_exactly_or_says_absent():
    fam = get_family("qwen2.5-vl")
    gt = [[100, 50, 20, 40], [100, 50, 20, 40], [np.nan] * 4]
    seq = _frames_seq(gt, absent=np.array([False, False, True]))
    crop = Crop(x1=80.0, y1=40.0, side=112.0, size=112)  # scale 1: crop pixels = frame pixels - (80, 40)
    assert crop_answer(seq, 1, crop, fam, 0.25) == [20.0, 10.0, 40.0, 50.0]
    half = Crop(x1=0.0, y1=0.0, side=224.0, size=112)  # scale 0.5
    assert crop_answer(seq, 1, half, fam, 0.25) == [50.0, 25.0, 60.0, 45.0]
    assert crop_answer(seq, 2, crop, fam, 0.25) == []  # absent frame
    far = Crop(x1=200.0, y1=100.0, side=112.0, size=112)  # the target lies outside
    assert crop_answer(seq, 1, far, fam, 0.25) == []
    edge = Crop(x1=110.0, y1=40.0, side=112.0, size=112)  # half the target inside: clipped box
    assert crop_answer(seq, 1, edge, fam, 0.25) == [0.0, 10.0, 10.0, 50.0]
    assert crop_answer(seq, 1, edge, fam, 0.6) == []


def test_rollout_states_follow_the_policy_and_include_drift(synthetic):
    _, seqs = synthetic
    factory = functools.partial(MLLMTracker, OracleBackend(noise=0.6, seed=1), crop_size=112)
    counts = Counter()
    rows = list(rollout_rows(factory, seqs, seed=0, options=RolloutOptions(2, 10, 0.25, 4), counts=counts))
    assert len(rows) == counts["states"] > 0
    assert counts["drifted"] > 0  # a noisy policy drifts, and its drifted crops are kept
    fam = get_family("qwen2.5-vl")
    by_name = {s.name: s for s in seqs}
    for row in rows:
        seq = by_name[row["sequence"]]
        start, frame = row["frame_ids"]
        template, search = (Crop(x1, y1, side, int(size)) for x1, y1, side, size in row["crops"])
        assert row["solution"] == crop_answer(seq, frame, search, fam, 0.25)
        assert np.array_equal(row["frame_boxes"][1], seq.gt[frame].tolist())
        # the template crop is the start frame's box at the template factor, as the tracker made it
        assert template.side == pytest.approx(np.ceil(np.sqrt(seq.gt[start][2] * seq.gt[start][3]) * 4.0))
        text = row["completion"][0]["content"][0]["text"]
        assert text == "[]" if not row["solution"] else json.loads(text) == [int(v) for v in row["solution"]]
    # the search crops are centred on the tracker's previous answers, not on the truth
    offsets = [abs(np.array(r["crops"][1][:2]) + r["crops"][1][2] / 2
                   - (np.array(r["frame_boxes"][1][:2]) + np.array(r["frame_boxes"][1][2:]) / 2)).max()
               for r in rows if r["solution"]]
    assert max(offsets) > 5


def test_rollouts_are_deterministic_by_seed(synthetic):
    _, seqs = synthetic

    def run(seed):
        factory = functools.partial(MLLMTracker, OracleBackend(noise=0.3, seed=2), crop_size=112)
        return [(r["sequence"], r["frame_ids"], r["crops"], r["solution"])
                for r in rollout_rows(factory, seqs, seed, RolloutOptions(2, 6, 0.25, 3))]

    assert run(0) == run(0)
    assert [r[:2] for r in run(0)] != [r[:2] for r in run(1)]  # other start frames


@pytest.mark.parametrize("name,best", [("r1track", 1.5), ("track", 1.0), ("giou", 1.0), ("iou", 1.0),
                                       ("format", 1.0)])
def test_rewards_pay_the_absent_answer_only_when_the_target_is_absent(name, best):
    reward = REWARDS[name]
    box = [10.0, 10.0, 30.0, 40.0]
    got = reward(["[]", "[10,10,30,40]", "[ ]"], [[], [], []], task=["track"] * 3)
    assert got == [best, 0.0, best]
    present = reward(["[]"], [box], task=["track"])[0]
    assert present == (0.0 if name in ("iou", "format") else -1.0)


def test_think_reward_absent():
    reward = REWARDS["think"]
    ok, boxed = reward(["<think>gone</think><answer>[]</answer>", "<think>x</think><answer>[1,2,3,4]</answer>"],
                       [[], []], task=["track"] * 2)
    assert ok == pytest.approx(1.55) and boxed == 0.0


def test_parse_absent():
    assert parse_absent("[]") and parse_absent(" [ ] ", strict=True)
    assert parse_absent("<think>lost it</think><answer>[]</answer>")
    assert not parse_absent("[1,2,3,4]") and not parse_absent("") and not parse_absent(None)
    assert not parse_absent("the answer is [] maybe", strict=True)


class _Scripted(Backend):
    """A model stand-in replying from a script (the tracker's reaction is under test, not a model)."""

    def __init__(self, replies):
        self.replies = list(replies)

    def generate(self, requests):
        return [self.replies.pop(0) for _ in requests]


def test_tracker_keeps_its_box_and_searches_wider_after_an_absent_answer():
    seq = _frames_seq([[100, 60, 20, 20]] * 4)
    tracker = MLLMTracker(_Scripted(["[]", "[0,0,30,30]", "garbage"]), crop_size=112, absent_search_scale=1.5)
    tracker.init(seq.frame(0), box=seq.gt[0])
    assert np.array_equal(tracker.update(seq.frame(1)), seq.gt[0])
    side = tracker.search_crop.side
    assert (tracker.absences, tracker.failures) == (1, 0)
    tracker.update(seq.frame(2))  # after "absent": a 1.5x wider search region
    assert tracker.search_crop.side == pytest.approx(np.ceil(np.sqrt(400) * 4 * 1.5))
    assert side == pytest.approx(np.ceil(np.sqrt(400) * 4))
    tracker.update(seq.frame(3))
    assert (tracker.absences, tracker.failures) == (1, 1)


def test_absent_answers_in_a_row_widen_the_search_up_to_the_limit():
    seq = _frames_seq([[150, 100, 20, 20]] * 7)
    tracker = MLLMTracker(_Scripted(["[]"] * 4 + ["garbage", "[]"]), crop_size=112, absent_search_scale=1.5,
                          absent_search_max=3.0)
    tracker.init(seq.frame(0), box=seq.gt[0])
    sides = []
    for t in range(1, 7):
        tracker.update(seq.frame(t))
        sides.append(tracker.search_crop.side)
    # 1, 1.5, 2.25, then capped at 3 times the normal region; an answer that is not "absent" resets it
    assert sides == [np.ceil(80 * f) for f in (1, 1.5, 2.25, 3, 3, 1)]
    assert (tracker.absences, tracker.failures) == (5, 1)
    with pytest.raises(R1TrackError, match="absent_search_max"):
        MLLMTracker(_Scripted([]), crop_size=112, absent_search_scale=1.5, absent_search_max=1.2)


def test_the_runner_counts_absent_answers_apart_from_failures(tmp_path):
    seq = _frames_seq([[100, 60, 20, 20]] * 5)
    factory = lambda: MLLMTracker(_Scripted(["[]", "[]", "garbage", "[1,1,20,20]"]), crop_size=112)  # noqa: E731
    evaluation.run(factory, [seq], tmp_path, "got10k", repetitions=1, progress=False)
    counts = results.read_answers(tmp_path, [seq.name])[seq.name]
    assert (counts.answers, counts.unparsable, counts.rejected, counts.absent) == (4, 1, 0, 2)
    assert counts.failure_rate == 0.25


def test_build_pairs_from_rollouts_of_the_packaged_model(synthetic, tmp_path):
    """The command a user runs: the nano policy tracks, its crops become pairs with exact answers."""
    pytest.importorskip("transformers")
    root, seqs = synthetic
    out = tmp_path / "pairs"
    assert main(["build-pairs", "--dataset", "got10k", "--root", str(root), "--split", "train", "--out", str(out),
                 "--from-rollouts", "nano", "--rollout-runs", "1", "--rollout-frames", "6", "--sizes", "112",
                 "--clip-boxes", "--skip-absent", "--jittered-rate", "0.25", "--rollout-device", "cpu"]) == 0
    info = json.loads((out / "pairs.json").read_text())
    states = info["states"]["states"]
    assert 0 < states <= 6 * len(seqs)
    assert info["samples"] == states + round(states * 0.25 / 0.75)
    from r1track.training.pairs import load_pairs

    data = load_pairs(out)
    fam = get_family("qwen2.5-vl")
    by_name = {s.name: s for s in seqs}
    steps = {}
    for row in data.select(range(states)):
        seq = by_name[row["sequence"]]
        start, frame = row["frame_ids"]
        steps.setdefault(row["sequence"], []).append(frame - start)
        search = Crop(*row["crops"][1][:3], int(row["crops"][1][3]))
        assert row["solution"] == crop_answer(seq, frame, search, fam, 0.25)
        assert [im.size for im in row["images"]] == [(112, 112), (112, 112)]
    # each run is one tracking pass: consecutive frames after its start
    assert all(s == list(range(1, len(s) + 1)) for s in steps.values())


def test_jittered_pairs_with_missing_targets_and_photometric_jitter(synthetic):
    from r1track.training.pairs import PairOptions, build_pairs

    _, seqs = synthetic
    base = dict(sizes=(112,), clip_boxes=True)
    plain = build_pairs(seqs, 30, 3, PairOptions(**base), progress=False)
    missing = build_pairs(seqs, 30, 3, PairOptions(**base, absent_rate=0.5), progress=False)
    empty = [r for r in missing if not r["solution"]]
    assert 5 <= len(empty) <= 25
    for r in empty:
        assert r["completion"][0]["content"][0]["text"] == "[]"
        search = Crop(*r["crops"][1][:3], int(r["crops"][1][3]))
        assert search.visible_share(np.array(r["frame_boxes"][1])) == 0
    assert all(len(r["solution"]) == 4 for r in plain)
    jittered = build_pairs(seqs, 30, 3, PairOptions(**base, photometric=0.8), progress=False)
    # the same crops and answers; other pixels
    assert [r["crops"] for r in jittered] == [r["crops"] for r in plain]
    assert [r["solution"] for r in jittered] == [r["solution"] for r in plain]
    differ = [np.abs(np.asarray(a["images"][1], float) - np.asarray(b["images"][1], float)).mean()
              for a, b in zip(jittered, plain)]
    assert np.mean(differ) > 3


def test_rollouts_leave_out_the_dropped_sequences(synthetic):
    """--drop-videos holds sequences out of rollout pairs as it does of jittered ones (a held-out part)."""
    from r1track.training.pairs import PairOptions, load_pairs
    from r1track.training.rollouts import write_rollout_pairs

    root, seqs = synthetic
    factory = functools.partial(MLLMTracker, OracleBackend(noise=0.3, seed=2), crop_size=112)
    held = seqs[0].name
    out = root.parent / "dropped-pairs"
    write_rollout_pairs(seqs, factory, out, seed=0, rollout=RolloutOptions(1, 5, 0.25, 4),
                        options=PairOptions(sizes=(112,), drop_videos=(held,)), jittered_rate=0.5,
                        overwrite=True, progress=False)
    names = set(load_pairs(out)["sequence"])
    assert held not in names and names == {s.name for s in seqs[1:]}
