"""`r1track eval` exit codes over many runs: every run after success must exit 0 (issue 10 item 2).

Generates a small synthetic GOT-10k-layout set, runs `r1track eval` N times in a row as separate
processes (each reruns every sequence, reads the results back and prints the score table) and prints
every exit code and how many were 0. Usage:

    PYTHONPATH=src .venv/bin/python benchmarks/eval_exit_codes.py [--runs 30 --tracker static]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from r1track import synth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--tracker", default="static")
    parser.add_argument("--sequences", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        synth.generate(root, sequences=args.sequences, frames=20, seed=0, split="val", size=(160, 120),
                       progress=False)
        cmd = [sys.executable, "-m", "r1track.cli", "eval", "--dataset", "got10k", "--root", str(root),
               "--split", "val", "--tracker", args.tracker, "--results", str(Path(tmp) / "runs"),
               "--overwrite", "--no-progress"]
        codes = []
        for i in range(args.runs):
            done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
            codes.append(done.returncode)
            if done.returncode != 0:
                print(f"run {i + 1}: exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    print("exit codes:", " ".join(map(str, codes)))
    print(f"{codes.count(0)} of {len(codes)} runs exited 0; counts: {dict(collections.Counter(codes))}")
    return 0 if codes.count(0) == len(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
