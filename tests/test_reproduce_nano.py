"""scripts/reproduce_nano.py: a work folder remembers the options that made it, and the closed-loop pool."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_nano.py"


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce_nano", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_work_folder_refuses_to_resume_with_other_options(reproduce, tmp_path):
    settings = dict(quick=True, mix="real", loop_kl="round", loop_pool="latest", synthetic_model=None)
    assert reproduce.settings_conflict(tmp_path, settings) is None  # first run: recorded
    assert json.loads((tmp_path / "pipeline.json").read_text()) == settings
    assert reproduce.settings_conflict(tmp_path, dict(settings)) is None
    message = reproduce.settings_conflict(tmp_path, {**settings, "loop_pool": "all"})
    assert str(tmp_path / "pipeline.json") in message and "--loop-pool latest (now all)" in message
    assert "--mix" not in message


def test_the_command_says_so_in_one_line_before_any_step(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "pipeline.json").write_text(json.dumps(dict(quick=True, mix="real", loop_kl="round",
                                                        loop_pool="latest", synthetic_model=None)))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--work", str(work), "--quick", "--synthetic-only",
                           "--mix", "paste"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "pipeline.json" in line and "--mix real (now paste)" in line
    assert sorted(p.name for p in work.iterdir()) == ["pipeline.json"]  # no step ran, nothing recorded


def test_the_closed_loop_pool_is_the_latest_round_or_every_round_so_far(reproduce, tmp_path):
    latest = reproduce.Pipeline(tmp_path, quick=True, threads=1, mix="real", loop_pool="latest")
    every = reproduce.Pipeline(tmp_path, quick=True, threads=1, mix="real", loop_pool="all")
    names = lambda parts: [p.name for p in parts]  # noqa: E731
    assert names(latest.loop_pool_parts(seed=2, r=3)) == ["loop-seed2-r3-got", "loop-seed2-r3-mot"]
    assert names(every.loop_pool_parts(seed=2, r=3)) == [f"loop-seed2-r{r}-{src}" for r in (1, 2, 3)
                                                          for src in ("got", "mot")]
    assert names(every.loop_pool_parts(seed=0, r=1)) == names(latest.loop_pool_parts(seed=0, r=1))
