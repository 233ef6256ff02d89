"""GOT-10k-layout splits with absent frames written as ``nan,nan,nan,nan`` (UAV123's convention) with
``absence.label`` 1 and ``cover.label`` 0: they load, build pairs and score through the commands.
Scoring parity with the got10k toolkit on such frames: tests/test_got10k_parity.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from r1track import datasets, synth
from r1track.boxes import is_valid
from r1track.cli import main

REAL_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "train"
ABSENT = {"Synth_Train_000001": [3, 4, 5], "Synth_Train_000002": [9]}


@pytest.fixture()
def split(tmp_path):
    root = synth.generate(tmp_path / "data", sequences=2, frames=10, seed=7, split="train", size="160x120",
                          progress=False)
    for name, frames in ABSENT.items():
        folder = root / name
        lines = (folder / "groundtruth.txt").read_text().splitlines()
        absence = (folder / "absence.label").read_text().split()
        cover = (folder / "cover.label").read_text().split()
        for f in frames:
            lines[f], absence[f], cover[f] = "nan,nan,nan,nan", "1", "0"
        (folder / "groundtruth.txt").write_text("\n".join(lines) + "\n")
        (folder / "absence.label").write_text("\n".join(absence) + "\n")
        (folder / "cover.label").write_text("\n".join(cover) + "\n")
    return root


def test_absent_frames_load_score_and_are_never_pair_targets(split, tmp_path, capsys):
    seqs = {s.name: s for s in datasets.load("got10k", split)}
    for name, frames in ABSENT.items():
        assert set(frames) <= set(np.flatnonzero(seqs[name].absent))  # synth adds occluded frames of its own
        assert np.flatnonzero(np.isnan(seqs[name].gt).any(axis=1)).tolist() == frames
        assert (seqs[name].meta["cover"][frames] == 0).all()
    scored = sum(int(((s.meta["cover"] > 0) & np.isfinite(s.gt).all(axis=1))[1:].sum()) for s in seqs.values())

    runs = tmp_path / "runs"
    assert main(["eval", "--dataset", "got10k", "--root", str(split), "--tracker", "oracle",
                 "--results", str(runs), "--no-progress"]) == 0
    assert "oracle" in capsys.readouterr().out
    assert main(["report", "--dataset", "got10k", "--root", str(split), "--results", str(runs),
                 "--json", str(tmp_path / "s.json")]) == 0
    overall = json.loads((tmp_path / "s.json").read_text())["oracle"]["overall"]
    assert overall["num_frames"] == scored <= 2 * 9 - 4  # frame 0 and the absent frames are not scored
    assert overall["ao"] == pytest.approx(1.0)  # the oracle is exact wherever a box exists

    out = tmp_path / "pairs"
    assert main(["build-pairs", "--dataset", "got10k", "--root", str(split), "--out", str(out),
                 "--samples", "40", "--sizes", "64"]) == 0
    capsys.readouterr()
    from r1track.training.pairs import load_pairs

    ds = load_pairs(out, cache_dir=str(tmp_path / "hf"))
    drawn = {(n, f) for n, ids in zip(ds["sequence"], ds["frame_ids"]) for f in ids}
    assert not drawn & {(n, f) for n, frames in ABSENT.items() for f in frames}
    assert all(is_valid(np.array(b)).all() for b in ds["frame_boxes"])


@pytest.mark.skipif(not REAL_TRAIN.is_dir(), reason=f"real sequences not found at {REAL_TRAIN}")
def test_real_split_with_absent_frames_loads():
    seqs = datasets.load("got10k", REAL_TRAIN)
    assert len(seqs) == 27 and sum(len(s) for s in seqs) == 2731  # the data's README
    absent = {s.name: int(s.absent.sum()) for s in seqs if s.absent.any()}
    assert absent == {"uav_car14": 9, "uav_group2_2": 2, "uav_group3_2": 16}
    for s in seqs:
        np.testing.assert_array_equal(np.isnan(s.gt).any(axis=1), s.absent)
