"""`r1track demo` (the README's first command) end to end with the weight-free trackers; a second call
resumes instead of recomputing."""

from __future__ import annotations

import json

from r1track.cli import main


def test_demo_prints_the_table_and_writes_plots_and_scores(tmp_path, capsys):
    args = ["demo", "--out", str(tmp_path), "--sequences", "2", "--frames", "8", "--model", "none",
            "--trackers", "static,kcf,oracle"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "AO" in out and "SR0.50" in out
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert set(scores) == {"static", "kcf", "oracle"}
    assert scores["oracle"]["overall"]["ao"] > 0.99 > scores["static"]["overall"]["ao"]
    assert (tmp_path / "plots" / "success_plot.png").stat().st_size > 10_000
    stamp = (tmp_path / "results" / "kcf").stat().st_mtime_ns
    result_files = sorted(p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.txt"))
    assert main(args) == 0  # everything is complete: nothing is tracked or rewritten again
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.txt")) == result_files
    assert (tmp_path / "results" / "kcf").stat().st_mtime_ns == stamp


def test_demo_runs_with_the_packaged_model(tmp_path, capsys):
    from r1track.nano import default_model_path

    default_model_path()  # the model ships with the package: its absence is a failure, not a skip
    args = ["demo", "--out", str(tmp_path), "--sequences", "1", "--frames", "4", "--trackers", "static"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "r1track-nano" in out  # the MLLM row of the table
    assert "tracked from the first-frame box: AO" in out and "tracked from \"the " in out
    for how in ("box", "text"):
        assert (tmp_path / f"clip-{how}.mp4").stat().st_size > 0
