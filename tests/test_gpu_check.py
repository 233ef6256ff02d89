"""benchmarks/gpu_check.sh --smoke: every Python part of the GPU figures script runs on the CPU at tiny
sizes (tracking in lockstep through transformers, the vLLM guard, one GRPO step of the reference recipe)
and prints the markdown table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_smoke_prints_every_figure():
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    tracking = [r for r in rows if r.startswith("| tracking, transformers")]
    assert len(tracking) == 2 and all(float(re.search(r"([\d.]+) frames/s", r).group(1)) > 0 for r in tracking)
    assert any(r.startswith("| tracking, vLLM") for r in rows)  # measured, or said to be missing
    (grpo,) = [r for r in rows if r.startswith("| GRPO step, reference recipe")]
    assert float(re.search(r"([\d.]+) s step", grpo).group(1)) > 0
