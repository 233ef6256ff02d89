"""Real stages of work folders made with different ``scripts/reproduce_nano.py`` options (``--crop-size``,
``--search-factor``, ``--previous-rate``, ``--tracker-factor``, ...), side by side: the SFT model and each
GRPO variant's runs, stopped by validation as the pipeline stops them, on the held-out real sequences, the
held-out MOT identities and the validation set.

    PYTHONPATH=src .venv/bin/python benchmarks/work_folders.py --work W1 W2 [--seeds 0 1 2] \
        [--variants ref loop] [--extra RUN ...]

Each folder's runs are evaluated where their results are missing (``r1track eval``, the pipeline's names
and commands, so a later resume of the pipeline reuses them); AO per set, real+mot pooled by frame, and
per variant the seed mean. The ``options`` column gives what the folder's ``pipeline.json`` records
(crop size, search factor, previous rate, tracker factor, prompt, bf16). ``--extra RUN``: more models to compare,
``WORK/runs/RUN/model`` where a folder has one (e.g. an SFT run continued by hand); extra runs named
``sft-real-seed*`` (the SFT recipe with other trainer seeds) also give an SFT seed mean with ``sft-real``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import reproduce_nano as reproduce  # noqa: E402

from r1track.errors import exit_status  # noqa: E402

SETS = ("real", "mot", "val", "real+mot")
VARIANT_NAMES = {"ref": "reference GRPO", "loop": "closed-loop GRPO"}


def compare(work: Path, seeds: list[int], variants: tuple[str, ...], threads: int, extra: list[str]):
    """(options, {model: {set: AO}}, stops) of one work folder's SFT model and GRPO runs."""
    record = reproduce.recorded_settings(work)
    p = reproduce.Pipeline.from_settings(work, record, threads)
    stops = p.choose_stops(seeds, variants=variants)
    models = {"sft-real": work / "runs" / "sft-real" / "model",
              **{run: Path(stop["model"]) for run, stop in stops.items()},
              **{run: work / "runs" / run / "model" for run in extra if (work / "runs" / run / "model").is_dir()}}
    p.evaluate_sets(models, sets=SETS[:-1])
    scores = reproduce.score_sets(p, list(models))
    options = f"{record['crop_size']} px, search factor {record['search_factor']:g}"
    options += f", previous {record['previous_rate']:g}"
    options += f", tracker factor {record['tracker_factor']:g}" if record["tracker_factor"] else ""
    options += f", {record['prompt']} prompt" if record["prompt"] != "current" else ""
    options += ", bf16" if record["bf16"] else ""
    return options, {name: {k: scores[k][name]["ao"] for k in SETS} for name in models}, stops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, nargs="+", required=True, help="reproduce_nano.py work folders")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANT_NAMES), default=list(VARIANT_NAMES),
                        help="GRPO variants to compare (their runs must exist in every folder)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--extra", nargs="*", default=[], help="more run folders (WORK/runs/RUN/model) to compare")
    args = parser.parse_args(argv)
    print("| options | model | stopped at | " + " | ".join(f"{k} AO" for k in SETS) + " |")
    print("| --- " * (3 + len(SETS)) + "|")
    for work in args.work:
        options, scores, stops = compare(work.resolve(), args.seeds, tuple(args.variants), args.threads, args.extra)
        rows = dict(scores)
        groups = {VARIANT_NAMES[v]: [n for n in stops if n.split("-")[1] == v] for v in args.variants}
        sft_seeds = [n for n in scores if n.startswith("sft-real-seed")]
        if sft_seeds:
            groups = {"SFT": ["sft-real", *sft_seeds], **groups}
        for group, runs in groups.items():
            rows[f"{group}, mean"] = {k: sum(scores[n][k] for n in runs) / len(runs) for k in SETS}
        for name, row in rows.items():
            step = str(stops[name]["step"]) if name in stops else ""
            print(f"| {options} | {name} | {step} | " + " | ".join(f"{row[k]:.3f}" for k in SETS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main, "work_folders.py"))
