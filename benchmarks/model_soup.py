"""Model soups of a ``scripts/reproduce_nano.py`` work folder: the uniform weight average of GRPO runs that
start from the same SFT model, each taken where the pipeline stops it (validation AO).

    PYTHONPATH=src .venv/bin/python benchmarks/model_soup.py --work W [--seeds 0 1 2]

Writes ``W/runs/soup-loop/model`` (the closed-loop runs) and ``W/runs/soup-all/model`` (reference and
closed-loop runs) as the pipeline's ``--soups`` does (``r1track soup``), then evaluates the soups
on the pipeline's sets with its commands (results beside the runs', reused when present) and prints AO
per set for the SFT model, each variant's runs and seed mean, and the soups (``val``: the pipeline's
validation set, pasted from the training part; the other sets are held out), then each soup's AO on all
120 synthetic held-out sequences.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import reproduce_nano as reproduce  # noqa: E402

from r1track.errors import exit_status  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a reproduce_nano.py work folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    work = args.work.resolve()
    p = reproduce.Pipeline.from_settings(work, reproduce.recorded_settings(work), args.threads)
    stops = p.choose_stops(args.seeds)
    runs = [f"grpo-{v}-seed{s}" for v in ("ref", "loop") for s in args.seeds]
    soups = p.soups({run: Path(stops[run]["model"]) for run in runs}, args.seeds)
    for name, variants in reproduce.SOUPS.items():
        print(f"{name}: " + ", ".join(f"{run} step {stops[run]['step']}" for run in runs if run.split("-")[1] in variants))
    p.evaluate_sets(soups)
    scores = reproduce.score_sets(p, ["sft-real", *runs, *soups])
    print(table({name: {k: scores[k][name]["ao"] for k in scores} for name in ["sft-real", *runs, *soups]},
                args.seeds))
    for name, model in soups.items():  # the synthetic target is on the whole held-out split
        overall = p.score_installed(name, model)
        print(f"{name}: AO {overall['ao']:.3f}, SR0.5 {overall['sr50']:.3f} on all {overall['num_sequences']} "
              "synthetic held-out sequences")
    return 0


def table(ao: dict[str, dict[str, float]], seeds: list[int]) -> str:
    """Markdown: AO per set of every model, each variant's seed mean (spread) after its runs."""
    sets = list(next(iter(ao.values())))
    lines = ["| model | " + " | ".join(sets) + " |", "| --- " * (len(sets) + 1) + "|"]
    for name, row in ao.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in sets) + " |")
        for v in ("ref", "loop"):
            if name == f"grpo-{v}-seed{seeds[-1]}":
                runs = [ao[f"grpo-{v}-seed{s}"] for s in seeds]
                cells = [f"{statistics.fmean(r[k] for r in runs):.3f} ({max(r[k] for r in runs) - min(r[k] for r in runs):.3f})"
                         for k in sets]
                lines.append(f"| grpo-{v} mean (spread) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(exit_status(main, "model_soup.py"))
