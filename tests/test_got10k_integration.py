"""Got10kTracker: an r1track tracker run by the got10k toolkit's own ExperimentGOT10k scores exactly what
`r1track eval` + `r1track report` score on the same synthetic split."""

from __future__ import annotations

import json
import os

os.environ.setdefault("MPLBACKEND", "Agg")  # the toolkit imports pyplot and saves a plot

import numpy as np
import pytest

pytest.importorskip("six")
experiments = pytest.importorskip("got10k.experiments")

import r1track  # noqa: E402
from r1track.cli import main  # noqa: E402
from r1track.integrations.got10k import Got10kTracker  # noqa: E402


def test_toolkit_run_of_our_tracker_scores_as_r1track_eval(tmp_path, capsys):
    root = tmp_path / "synth"
    assert main(["synth", "--out", str(root), "--sequences", "3", "--frames", "12", "--seed", "4"]) == 0
    exp = experiments.ExperimentGOT10k(str(root), subset="val", result_dir=str(tmp_path / "toolkit"),
                                       report_dir=str(tmp_path / "reports"))
    tracker = Got10kTracker(r1track.load_tracker("csrt"), name="csrt")
    assert tracker.is_deterministic and tracker.name == "csrt"
    exp.run(tracker)
    theirs = exp.report(["csrt"])["csrt"]["overall"]

    results = tmp_path / "ours"
    assert main(["eval", "--dataset", "got10k", "--root", str(root), "--split", "val", "--tracker", "csrt",
                 "--name", "csrt", "--results", str(results), "--no-progress"]) == 0
    assert main(["report", "--dataset", "got10k", "--root", str(root), "--split", "val",
                 "--results", str(results), "--json", str(tmp_path / "scores.json")]) == 0
    ours = json.loads((tmp_path / "scores.json").read_text())["csrt"]
    mine = ours["overall"]
    assert 0.3 < mine["ao"] < 1.0  # CSRT tracks the synthetic shapes, not trivially
    assert abs(mine["ao"] - theirs["ao"]) <= 1e-9 and abs(mine["sr50"] - theirs["sr"]) <= 1e-9
    np.testing.assert_allclose(mine["success_curve"], theirs["succ_curve"], rtol=0, atol=1e-9)
    per_sequence = exp.report(["csrt"])["csrt"]["seq_wise"]
    assert {k: round(v["ao"], 9) for k, v in ours["sequences"].items()} == \
        {k: round(v["ao"], 9) for k, v in per_sequence.items()}
