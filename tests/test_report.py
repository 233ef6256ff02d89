from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import shared
from r1track import cli, datasets, evaluation, report, synth
from r1track.errors import R1TrackError
from r1track.trackers.base import Tracker
from r1track.trackers.baselines import KCF, Oracle, Static


class Jitter(Tracker):
    """Non-deterministic: the initial box plus noise (three runs per sequence under GOT-10k)."""

    name = "Jitter"
    deterministic = False

    def init(self, image, box=None, text=None):
        self.box, self.rng = np.asarray(box, dtype=np.float64), np.random.default_rng()

    def update(self, image):
        return self.box + self.rng.normal(0, 3, 4)


@pytest.fixture(scope="module")
def got10k_results(tmp_path_factory):
    """Synthetic val split with results of three trackers (the runner's own output)."""
    root = tmp_path_factory.mktemp("rep")
    synth.generate(root, sequences=3, frames=15, seed=3, split="val", progress=False)
    seqs = datasets.load("got10k", root, "val")
    for cls in (Oracle, Static, KCF, Jitter):
        evaluation.run(cls, seqs, root / "runs" / cls.name, "got10k", progress=False)
    return root, seqs


@pytest.fixture(scope="module")
def ope_results(got10k_results, tmp_path_factory):
    root, seqs = got10k_results
    out = tmp_path_factory.mktemp("ope")
    for cls in (Oracle, Static, KCF):
        evaluation.run(cls, seqs, out / cls.name, "ope", progress=False)
    return out, seqs


def test_report_scores_every_tracker_folder(got10k_results):
    root, seqs = got10k_results
    scores = report.report(seqs, "got10k", root / "runs")
    assert set(scores) == {"Oracle", "Static", "KCF", "Jitter"}
    assert scores["Oracle"]["overall"]["ao"] == pytest.approx(1.0)
    assert scores["Static"]["overall"]["ao"] < scores["Oracle"]["overall"]["ao"] - 0.2
    assert set(report.report(seqs, "got10k", root / "runs", ["KCF"])) == {"KCF"}
    with pytest.raises(R1TrackError, match="no results for tracker 'nope'"):
        report.report(seqs, "got10k", root / "runs", ["nope"])


def test_report_matches_the_got10k_toolkit_on_runner_output(got10k_results):
    """The runner's files read by the official toolkit give our numbers (3-run Jitter included)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    pytest.importorskip("six")
    experiments = pytest.importorskip("got10k.experiments")
    root, seqs = got10k_results
    # the toolkit reads <result_dir>/GOT-10k/<tracker>/
    (root / "toolkit").mkdir(exist_ok=True)
    if not (root / "toolkit" / "GOT-10k").exists():
        (root / "toolkit" / "GOT-10k").symlink_to(root / "runs", target_is_directory=True)
    exp = experiments.ExperimentGOT10k(str(root), subset="val", result_dir=str(root / "toolkit"),
                                       report_dir=str(root / "toolkit_reports"))
    theirs = exp.report(["KCF", "Jitter"])
    ours = report.report(seqs, "got10k", root / "runs", ["KCF", "Jitter"])
    for name in ("KCF", "Jitter"):
        assert ours[name]["overall"]["ao"] == pytest.approx(theirs[name]["overall"]["ao"], abs=1e-9)
        assert ours[name]["overall"]["sr50"] == pytest.approx(theirs[name]["overall"]["sr"], abs=1e-9)
        assert ours[name]["overall"]["speed_fps"] == pytest.approx(theirs[name]["overall"]["speed_fps"], rel=1e-6)
    assert 0 < ours["Jitter"]["overall"]["ao"] < 1


def test_table_is_sorted_by_headline_score_with_the_protocol_columns(got10k_results, ope_results):
    root, seqs = got10k_results
    scores = report.report(seqs, "got10k", root / "runs")
    lines = report.format_table(scores, "got10k").splitlines()
    assert lines[0].split() == ["Tracker", "AO", "SR0.50", "SR0.75", "FPS"]
    rows = [line.split() for line in lines[2:]]
    aos = [float(r[1]) for r in rows]
    assert aos == sorted(aos, reverse=True) and rows[0][0] == "Oracle" and len(rows) == 4
    assert float(rows[0][1]) == pytest.approx(scores["Oracle"]["overall"]["ao"], abs=5e-4)

    out, seqs = ope_results
    ope = report.report(seqs, "ope", out)
    lines = report.format_table(ope, "ope").splitlines()
    assert lines[0].split() == ["Tracker", "AUC", "Prec", "NPrec", "FPS"]
    aucs = [float(line.split()[1]) for line in lines[2:]]
    assert aucs == sorted(aucs, reverse=True) and lines[2].split()[0] == "Oracle"


def test_json_has_overall_and_per_sequence_scores(got10k_results, tmp_path):
    root, seqs = got10k_results
    scores = report.report(seqs, "got10k", root / "runs")
    path = report.write_json(scores, tmp_path / "out" / "scores.json")
    data = json.loads(path.read_text())
    assert set(data) == set(scores)
    for name, entry in data.items():
        assert {"overall", "sequences"} <= set(entry)
        assert set(entry["sequences"]) == {s.name for s in seqs}
        assert entry["overall"]["ao"] == pytest.approx(scores[name]["overall"]["ao"])
        assert len(entry["overall"]["success_curve"]) == 101
        assert all(isinstance(v["ao"], float) for v in entry["sequences"].values())
    assert not list((tmp_path / "out").glob(".*tmp"))  # atomic write left no temporary file


def test_json_turns_nan_into_null():
    assert report.to_json({"a": {"overall": {"x": float("nan"), "c": np.array([0.5, np.nan])}}}) == \
        {"a": {"overall": {"x": None, "c": [0.5, None]}}}


def _non_trivial_png(path: Path, n_lines: int):
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] > 300 and img.shape[1] > 400, path
    # plotted lines are saturated colours: count the distinct strongly coloured hues
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    hues = hsv[..., 0][(hsv[..., 1] > 150) & (hsv[..., 2] > 100)]
    assert len(np.unique(hues // 10)) >= n_lines, path


def test_plots_are_written_per_protocol(got10k_results, ope_results, tmp_path):
    root, seqs = got10k_results
    paths = report.plot_curves(report.report(seqs, "got10k", root / "runs"), "got10k", tmp_path / "g")
    assert [p.name for p in paths] == ["success_plot.png"]
    _non_trivial_png(paths[0], 3)

    out, seqs = ope_results
    paths = report.plot_curves(report.report(seqs, "ope", out), "ope", tmp_path / "o")
    assert sorted(p.name for p in paths) == ["norm_precision_plot.png", "precision_plot.png", "success_plot.png"]
    for p in paths:
        _non_trivial_png(p, 3)


def test_legend_labels_carry_the_score(got10k_results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root, seqs = got10k_results
    scores = report.report(seqs, "got10k", root / "runs", ["Oracle", "Static"])
    before = set(plt.get_fignums())
    report.plot_curves(scores, "got10k", root / "plots_labels")
    assert set(plt.get_fignums()) == before  # figures are closed
    assert report.legend_label("CSRT", 0.5123) == "CSRT [0.512]"


def test_group_tables(got10k_results, ope_results):
    root, seqs = got10k_results
    scores = report.report(seqs, "got10k", root / "runs")
    table = report.format_groups(scores, "got10k", "object_classes")
    classes = {s.meta["object_class"] for s in seqs}
    assert table.splitlines()[0].split()[:4] == ["object", "classes", "(AO)", "seqs"]
    assert {line.split()[0] for line in table.splitlines()[2:]} == classes
    out, oseqs = ope_results
    # the synthetic split has no attributes: say so instead of an empty table
    assert "no attributes" in report.format_groups(report.report(oseqs, "ope", out), "ope", "attributes")


def test_report_command_writes_json_and_plots(got10k_results, tmp_path, capsys):
    root, seqs = got10k_results
    code = cli.main(["report", "--dataset", "got10k", "--root", str(root), "--split", "val", "--results",
                     str(root / "runs"), "--trackers", "Static,Oracle", "--json", str(tmp_path / "s.json"),
                     "--plots", str(tmp_path / "plots"), "--by-class"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Oracle" in out and "motion classes" in out
    assert set(json.loads((tmp_path / "s.json").read_text())) == {"Static", "Oracle"}
    assert (tmp_path / "plots" / "success_plot.png").stat().st_size > 10_000
    # --by-attribute belongs to one-pass benchmarks
    assert cli.main(["report", "--dataset", "got10k", "--root", str(root), "--split", "val", "--results",
                     str(root / "runs"), "--by-attribute"]) == 2


def test_csrt_on_real_otb_sequences_end_to_end(tmp_path, capsys):
    OTB = shared("data/otb", "real OTB sequences and attributes, scored end to end")
    runs = tmp_path / "runs"
    code = cli.main(["eval", "--dataset", "otb", "--root", str(OTB), "--tracker", "csrt", "--results", str(runs),
                     "--no-progress"])
    assert code == 0
    assert "AUC" in capsys.readouterr().out  # OTB has ground truth: eval prints the score
    code = cli.main(["report", "--dataset", "otb", "--root", str(OTB), "--results", str(runs), "--json",
                     str(tmp_path / "otb.json"), "--by-attribute"])
    assert code == 0
    assert "attributes (AUC)" in capsys.readouterr().out
    data = json.loads((tmp_path / "otb.json").read_text())["csrt"]  # the name typed
    assert 0 < data["overall"]["auc"] <= 1 and 0 < data["overall"]["precision"] <= 1
    assert set(data["sequences"]) == {"Couple", "Football1"}
    assert data["overall"]["speed_fps"] > 0
