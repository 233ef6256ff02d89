"""Which validation set ranks the models as the held-out real video does: every GRPO stopping point of a
``scripts/reproduce_nano.py`` work folder (and its SFT model) on each candidate and on the held-out sets.

    PYTHONPATH=src .venv/bin/python benchmarks/validation_sets.py --work W [--seeds 0 1 2] [--threads 2]

Candidates (``reproduce_nano.VALIDATIONS``), made of training data only:

- ``val``: the pipeline's validation set (40 sequences pasted from the training part, never paired);
- ``real-train``: the real training sequences, tracked from their first box (their frames are paired,
  but the tracking loop's own drift is not);
- ``val+real-train``: both pooled by frame (``--validation val+real-train``).

Per stopping point its AO on every set (``r1track eval``, the pipeline's commands and result folders, so a
rerun or a later resume of the pipeline reuses them); per candidate the rank correlation (Spearman) of its
AO with the held-out real+mot AO over the stopping points, and the held-out real+mot AO of what it selects:
each run stopped at its best point (seed means and spreads per variant) and the single best point (what
``--install best`` would ship among them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import reproduce_nano as reproduce  # noqa: E402

from r1track.errors import exit_status  # noqa: E402

HELD_OUT = ("real", "mot")
CANDIDATES = ("val", "real-train", "val+real-train")


def spearman(a, b) -> float:
    ra, rb = (np.argsort(np.argsort(x)).astype(float) for x in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


def selections(rows: dict[str, dict[str, float]], points: list[str], candidate: str) -> dict:
    """What ``candidate`` selects among the stopping points: per variant the seed mean and spread of the
    held-out real+mot AO at each run's stop, and the single best point."""
    stops = reproduce.stops_by_validation(dict.fromkeys(points, Path()), {n: rows[n][candidate] for n in points})
    chosen = {run: f"{run}-step{stop['step']}" for run, stop in stops.items()}
    means = {}
    for variant in ("ref", "loop"):
        held = [rows[point]["real+mot"] for run, point in chosen.items() if run.split("-")[1] == variant]
        means[variant] = (float(np.mean(held)), float(np.max(held) - np.min(held))) if held else None
    return {"means": means, "best": max(points, key=lambda n: rows[n][candidate])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a reproduce_nano.py work folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    work = args.work.resolve()
    settings = {**reproduce.recorded_settings(work), "validation": "val+real-train"}
    p = reproduce.Pipeline.from_settings(work, settings, args.threads)
    points = {name: model for s in args.seeds for name, model in p.stopping_points(s).items()}
    models = {"sft-real": work / "runs" / "sft-real" / "model", **points}
    p.evaluate_sets(models, sets=(*HELD_OUT, "val", "real-train"))
    by_set = reproduce.score_sets(p, list(models))  # real+mot and val+real-train pooled by frame there
    rows = {name: {k: by_set[k][name]["ao"] for k in (*CANDIDATES, *HELD_OUT, "real+mot")} for name in models}

    columns = (*CANDIDATES, *HELD_OUT, "real+mot")
    print("| model | " + " | ".join(f"{c} AO" for c in columns) + " |")
    print("| --- " * (1 + len(columns)) + "|")
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    names = list(points)
    held = [rows[n]["real+mot"] for n in names]
    print(f"\n{len(names)} stopping points; held-out real+mot of SFT {rows['sft-real']['real+mot']:.3f}\n")
    print("| validation set | Spearman with real+mot | reference GRPO stopped by it: mean (spread) | "
          "closed loop: mean (spread) | its best point: real+mot |")
    print("| --- | --- | --- | --- | --- |")
    for candidate in CANDIDATES:
        sel = selections(rows, names, candidate)
        means = " | ".join("-" if sel["means"][v] is None else "{:.3f} ({:.3f})".format(*sel["means"][v])
                           for v in ("ref", "loop"))
        best = sel["best"]
        print(f"| {candidate} | {spearman([rows[n][candidate] for n in names], held):+.2f} | {means} | "
              f"{best} {rows[best]['real+mot']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main, "validation_sets.py"))
