"""Crop size of the real stages: the SFT model and the reference GRPO runs (stopped by validation, as
``scripts/reproduce_nano.py`` stops them) of work folders made with different ``--crop-size``, side by side
on the held-out real sequences, the held-out MOT identities and the validation set.

    PYTHONPATH=src .venv/bin/python benchmarks/crop_size.py --work W112 W224 [--seeds 0 1 2] [--extra RUN ...]

Each folder's runs are evaluated where their results are missing (``r1track eval``, the pipeline's names
and commands, so a later resume of the pipeline reuses them); AO per set, real+mot pooled by frame.
``--extra RUN``: more models to compare, ``WORK/runs/RUN/model`` where a folder has one (e.g. an SFT run
continued by hand).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import reproduce_nano as reproduce  # noqa: E402

SETS = ("real", "mot", "val")


def compare(work: Path, seeds: list[int], threads: int, extra: list[str]) -> tuple[int, dict, dict]:
    """(crop size, {model: {set: AO}}, stops) of one work folder's SFT model and reference GRPO runs."""
    record = json.loads((work / "pipeline.json").read_text())
    crop = record.get("crop_size", reproduce.NANO_CROP_SIZE)
    p = reproduce.Pipeline(work, quick=record["quick"], threads=threads, mix=record["mix"], crop=crop)
    stops = p.choose_stops(seeds, variants=("ref",))
    models = {"sft-real": work / "runs" / "sft-real" / "model",
              **{run: Path(stop["model"]) for run, stop in stops.items()},
              **{run: work / "runs" / run / "model" for run in extra if (work / "runs" / run / "model").is_dir()}}
    p.evaluate_sets(models, sets=SETS)
    scores = reproduce.score_sets(p, list(models))
    return crop, {name: {k: scores[k][name]["ao"] for k in (*SETS, "real+mot")} for name in models}, stops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, nargs="+", required=True, help="reproduce_nano.py work folders")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--extra", nargs="*", default=[], help="more run folders (WORK/runs/RUN/model) to compare")
    args = parser.parse_args(argv)
    print("| crop | model | stopped at | " + " | ".join(f"{k} AO" for k in (*SETS, "real+mot")) + " |")
    print("| --- " * (4 + len(SETS)) + "|")
    for work in args.work:
        crop, scores, stops = compare(work.resolve(), args.seeds, args.threads, args.extra)
        ref = list(stops)
        mean = {k: sum(scores[n][k] for n in ref) / len(ref) for k in (*SETS, "real+mot")}
        rows = {**scores, "reference GRPO, mean": mean}
        for name, row in rows.items():
            step = str(stops[name]["step"]) if name in stops else ""
            print(f"| {crop} | {name} | {step} | " + " | ".join(f"{row[k]:.3f}" for k in (*SETS, "real+mot")) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
