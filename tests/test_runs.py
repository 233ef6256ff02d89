"""Trustworthy runs (issue 10): results know what made them, failures are counted, names are safe,
resume checks content, workers die with the runner. Every test goes through `r1track` commands."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from r1track import evaluation, results, synth
from r1track.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs-data")
    synth.generate(out, sequences=3, frames=8, seed=3, split="val", size=(160, 120), progress=False)
    return out


def eval_args(root, runs, *extra):
    return ["eval", "--dataset", "got10k", "--root", str(root), "--split", "val", "--results", str(runs),
            "--no-progress", *extra]


def report_args(root, runs, *extra):
    return ["report", "--dataset", "got10k", "--root", str(root), "--split", "val", "--results", str(runs), *extra]


def cli(args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "r1track.cli", *args], env=ENV, capture_output=True, text=True,
                          timeout=300)


# ---------------------------------------------------------------- 1: run manifest


def test_resume_with_other_options_stops_with_the_way_out(tmp_path, root, capsys):
    oracle = ["--tracker", "mllm", "--backend", "oracle", "--name", "m"]
    assert main(eval_args(root, tmp_path, *oracle, "--search-factor", "4")) == 0
    manifest = json.loads((tmp_path / "m" / "r1track-run.json").read_text())
    assert manifest["tracker"] == "MLLMTracker" and manifest["backend"] == "OracleBackend"
    assert manifest["tracker_options"]["search_factor"] == 4.0 and manifest["r1track_version"]
    capsys.readouterr()
    assert main(eval_args(root, tmp_path, *oracle, "--search-factor", "5")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "search_factor 4.0 -> 5.0" in err
    assert "--overwrite" in err and "--name" in err
    assert main(eval_args(root, tmp_path, *oracle, "--search-factor", "5", "--overwrite")) == 0
    assert "3 sequence(s) run, 0 already complete" in capsys.readouterr().err
    assert main(eval_args(root, tmp_path, *oracle, "--search-factor", "5")) == 0  # same run: resumes
    assert "0 sequence(s) run, 3 already complete" in capsys.readouterr().err


def test_calibrated_search_factors_are_recorded_and_checked_on_resume(tmp_path, root, capsys):
    oracle = ["--tracker", "mllm", "--backend", "oracle", "--name", "m"]
    assert main(eval_args(root, tmp_path, *oracle, "--calibrate-factors", "3", "4")) == 0
    manifest = json.loads((tmp_path / "m" / "r1track-run.json").read_text())
    assert manifest["tracker_options"]["calibrate_factors"] == [3.0, 4.0]
    assert "factor" not in manifest["tracker_options"]  # chosen per sequence, not a setting
    capsys.readouterr()
    assert main(eval_args(root, tmp_path, *oracle, "--calibrate-factors", "3", "5")) == 2
    assert "calibrate_factors [3.0, 4.0] -> [3.0, 5.0]" in capsys.readouterr().err
    assert main(eval_args(root, tmp_path, *oracle, "--calibrate-factors", "3", "4")) == 0
    assert "0 sequence(s) run, 3 already complete" in capsys.readouterr().err


def test_scale_range_is_recorded_and_a_bad_one_refused_in_one_line(tmp_path, root, capsys):
    oracle = ["--tracker", "mllm", "--backend", "oracle", "--name", "m"]
    assert main(eval_args(root, tmp_path, *oracle, "--scale-range", "0.5", "2")) == 0
    manifest = json.loads((tmp_path / "m" / "r1track-run.json").read_text())
    assert manifest["tracker_options"]["scale_range"] == [0.5, 2.0]
    capsys.readouterr()
    assert main(eval_args(root, tmp_path, *oracle, "--scale-range", "2", "3", "--name", "bad")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "scale_range must be (lo, hi)" in err


def test_results_without_a_manifest_are_not_resumed_blindly(tmp_path, root, capsys):
    results.write_got10k(tmp_path / "kcf", "Synth_Val_000001", [[[1, 1, 5, 5]] * 8], [[0.1] * 8])
    assert main(eval_args(root, tmp_path, "--tracker", "kcf")) == 2
    assert "without a run manifest" in capsys.readouterr().err


def test_two_checkpoints_at_dir_model_get_different_default_folders(tmp_path, root, tiny_dir, capsys):
    """Every `r1track train` output is DIR/model: the second must not resume the first one's results."""
    models = []
    for run in ("run1", "run2"):
        model = tmp_path / run / "model"
        shutil.copytree(tiny_dir, model)
        models.append(model)
    weights = models[1] / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-64:] = bytes(64)  # other values in the last tensor: another checkpoint, same size and layout
    weights.write_bytes(bytes(data))
    mllm = ["--tracker", "mllm", "--backend", "transformers", "--device", "cpu", "--limit", "1"]
    for model in models:
        assert main(eval_args(root, tmp_path / "results", *mllm, "--model", str(model))) == 0
        assert "1 sequence(s) run, 0 already complete" in capsys.readouterr().err
    folders = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert len(folders) == 2 and all(f.startswith("r1track-model-") for f in folders)


# ---------------------------------------------------------------- 2: exit status


def test_eval_exits_0_and_never_loads_a_threaded_csv_reader(tmp_path, root):
    code = ("import sys; from r1track.cli import main; rc = main(sys.argv[1:]); "
            "assert 'pyarrow' not in sys.modules, 'pyarrow was imported'; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, *eval_args(root, tmp_path, "--tracker", "static")],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "AO" in done.stdout


# ---------------------------------------------------------------- 3: answer failures


def test_unusable_answers_are_counted_printed_and_warned_about(tmp_path, root):
    done = cli(eval_args(root, tmp_path, "--tracker", "mllm", "--backend", "oracle", "--oracle-garbage-rate", "1",
                         "--name", "garbage"))
    assert done.returncode == 0, done.stderr
    answers = 3 * 7 * 3  # 3 sequences, 7 answers each (frame 0 is given), 3 runs (not deterministic)
    assert f"of {answers} answers unparsable" in done.stdout and "(100.0% failed)" in done.stdout
    assert "WARNING: garbage: 100.0% of the model's answers gave no usable box" in done.stderr
    counts = results.read_answers(tmp_path / "garbage", ["Synth_Val_000001"])["Synth_Val_000001"]
    assert counts.answers == 21 and counts.unparsable + counts.rejected == 21

    done = cli(report_args(root, tmp_path, "--json", str(tmp_path / "scores.json")))
    assert done.returncode == 0, done.stderr
    assert "(100.0% failed)" in done.stdout and "WARNING" in done.stderr
    summary = json.loads((tmp_path / "scores.json").read_text())["garbage"]["answers"]
    assert summary["answers"] == answers and summary["failure_rate"] == 1.0
    assert summary["sequences"]["Synth_Val_000002"]["answers"] == 21


def test_clean_answers_are_counted_without_a_warning(tmp_path, root):
    done = cli(eval_args(root, tmp_path, "--tracker", "mllm", "--backend", "oracle", "--name", "clean"))
    assert done.returncode == 0, done.stderr
    assert "clean: 0 of 21 answers unparsable, 0 rejected (0.0% failed), 0 said absent" in done.stdout
    assert "WARNING" not in done.stderr


def test_thinking_with_a_small_token_budget_is_warned_about(tmp_path, root, tiny_dir, capsys):
    args = ["--tracker", "mllm", "--backend", "transformers", "--device", "cpu", "--model", str(tiny_dir),
            "--limit", "1", "--thinking", "--max-new-tokens", "16"]
    assert main(eval_args(root, tmp_path, *args)) == 0
    assert "warning: --thinking with --max-new-tokens 16" in capsys.readouterr().err


# ---------------------------------------------------------------- 4: workers and interrupts


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def long_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("long-data")
    synth.generate(out, sequences=6, frames=400, seed=4, split="val", size=(320, 240), progress=False)
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_runner(tmp_path, long_root):
    proc = subprocess.Popen([sys.executable, "-m", "r1track.cli",
                             *eval_args(long_root, tmp_path, "--tracker", "csrt", "--workers", "2")],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(workers := _children(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) >= 2, "the workers never started"
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [w for w in workers if _alive(w)]
    for w in alive:  # clean up before failing
        os.kill(w, signal.SIGKILL)
    assert not alive, "orphan workers kept running after the runner was killed"


def _terminal_sigint() -> None:
    # a terminal's command gets SIGINT's default action; a test run started in the background of a
    # non-interactive shell ignores SIGINT, and children inherit that (Python then raises no
    # KeyboardInterrupt at all), so the child gets what a terminal would give it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_prints_how_to_resume_and_exits_130(tmp_path, long_root, workers):
    proc = subprocess.Popen([sys.executable, "-m", "r1track.cli",
                             *eval_args(long_root, tmp_path, "--tracker", "csrt", "--workers", workers)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_terminal_sigint)
    deadline = time.monotonic() + 60
    while not (tmp_path / "csrt" / "r1track-run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("r1track eval: interrupted")
    assert "run the same command again to resume" in err


def test_mllm_workers_are_spawned_and_match_one_process(tmp_path, root, capsys):
    oracle = ["--tracker", "mllm", "--backend", "oracle", "--oracle-noise", "0"]
    assert main(eval_args(root, tmp_path / "one", *oracle)) == 0
    assert main(eval_args(root, tmp_path / "two", *oracle, "--workers", "2")) == 0
    for name in ("Synth_Val_000001", "Synth_Val_000003"):
        assert results.got10k_run_file(tmp_path / "one" / "r1track-oracle", name, 1).read_bytes() == \
            results.got10k_run_file(tmp_path / "two" / "r1track-oracle", name, 1).read_bytes()
    from r1track.commands.eval import InEachProcess
    from r1track.trackers import KCF

    assert evaluation.start_method(InEachProcess("mllm", None)) == "spawn"
    assert evaluation.start_method(KCF) == "fork"


# ---------------------------------------------------------------- 8: sequence names


def _add_sequence(root: Path, entry: str, folder: Path) -> None:
    """Add a list.txt entry whose folder is ``folder`` (a copy of the first sequence)."""
    first = root / "val" / "Synth_Val_000001"
    for f in first.iterdir():
        if f.is_file():
            shutil.copy(f, folder / f.name)
    with open(root / "val" / "list.txt", "a") as f:
        f.write(entry + "\n")


def test_unsafe_sequence_names_are_refused(tmp_path, root):
    data = tmp_path / "data"
    shutil.copytree(root, data)
    _add_sequence(data, "..", data)  # the split's parent folder, named ".."
    done = cli(eval_args(data / "val", tmp_path / "runs", "--tracker", "static"))
    assert done.returncode == 2 and "unsafe sequence name '..'" in done.stderr
    assert not (tmp_path / "runs" / "static" / ".." / "..").exists() and not (tmp_path / "runs" / ".._001.txt").exists()


def test_duplicate_sequence_names_are_refused(tmp_path, root):
    data = tmp_path / "data"
    shutil.copytree(root, data)
    for sub in ("a", "b"):
        (data / "val" / sub / "seq").mkdir(parents=True)
        _add_sequence(data, f"{sub}/seq", data / "val" / sub / "seq")
    done = cli(eval_args(data, tmp_path / "runs", "--tracker", "static"))
    assert done.returncode == 2 and "duplicate sequence name 'seq'" in done.stderr


def test_pack_refuses_unsafe_member_names(tmp_path, root):
    data = tmp_path / "data"
    shutil.copytree(root, data)
    _add_sequence(data, "..", data)
    done = cli(["pack", "--format", "got10k", "--dataset", "got10k", "--root", str(data / "val"), "--split", "val",
                "--results", str(tmp_path), "--tracker", "x", "--out", str(tmp_path / "x.zip")])
    (tmp_path / "x").mkdir()
    done = cli(["pack", "--format", "got10k", "--dataset", "got10k", "--root", str(data / "val"), "--split", "val",
                "--results", str(tmp_path), "--tracker", "x", "--out", str(tmp_path / "x.zip")])
    assert done.returncode == 2 and "unsafe sequence name '..'" in done.stderr
    assert not (tmp_path / "x.zip").exists()


def test_unsafe_results_folder_names_are_refused(tmp_path, root, capsys):
    assert main(eval_args(root, tmp_path / "runs", "--tracker", "static", "--name", "..")) == 2
    assert "unsafe results folder name '..'" in capsys.readouterr().err


# ---------------------------------------------------------------- 9: resume checks content


def test_a_cut_or_garbled_result_file_is_rerun_on_resume(tmp_path, root, capsys):
    assert main(eval_args(root, tmp_path, "--tracker", "static")) == 0
    capsys.readouterr()
    run_file = results.got10k_run_file(tmp_path / "static", "Synth_Val_000002", 1)
    lines = run_file.read_text().splitlines()
    run_file.write_text("\n".join(lines[:-1] + ["12.5,3.0,gar"]) + "\n")  # same line count, cut last line
    assert main(eval_args(root, tmp_path, "--tracker", "static")) == 0
    captured = capsys.readouterr()
    assert "1 sequence(s) run, 2 already complete" in captured.err and "AO" in captured.out
    assert run_file.read_text().splitlines() == lines


# ---------------------------------------------------------------- 10: names


def test_the_tracker_name_typed_works_everywhere(tmp_path, root, capsys):
    assert main(eval_args(root, tmp_path, "--tracker", "csrt")) == 0
    assert main(report_args(root, tmp_path, "--trackers", "csrt", "--plots", str(tmp_path / "plots"))) == 0
    assert (tmp_path / "plots" / "success_plot.png").is_file()
    (tmp_path / "notes").mkdir()
    capsys.readouterr()
    assert main(report_args(root, tmp_path)) == 0  # the plots and notes folders are not trackers
    table = capsys.readouterr().out
    assert "csrt" in table and "plots" not in table and "notes" not in table


def test_folders_of_older_versions_are_found_by_the_name_typed(tmp_path, root, capsys):
    assert main(eval_args(root, tmp_path, "--tracker", "kcf", "--name", "KCF")) == 0
    assert main(report_args(root, tmp_path, "--trackers", "kcf")) == 0
    assert "KCF" in capsys.readouterr().out


# ---------------------------------------------------------------- 12: skips say why, CI fails instead


@pytest.mark.parametrize("require, outcome", [("0", "1 skipped"), ("1", "1 failed")])
def test_tests_needing_shared_data_say_why_or_fail_in_ci(tmp_path, require, outcome):
    tests = Path(__file__).resolve().parent
    (tmp_path / "test_needs_shared.py").write_text(
        "from conftest import shared\n\n"
        "def test_it():\n    shared('data/no-such-dataset', 'an example of outside data')\n")
    shutil.copy(tests / "conftest.py", tmp_path / "conftest.py")
    shutil.copy(tests.parent / "pyproject.toml", tmp_path / "pyproject.toml")  # the project's addopts (-rs)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path,
                          env=dict(ENV, R1TRACK_REQUIRE_SHARED=require), capture_output=True, text=True, timeout=120)
    assert outcome in done.stdout, done.stdout
    assert "no-such-dataset is missing (an example of outside data)" in done.stdout
