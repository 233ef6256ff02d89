"""Weight averages ("model soups") of a ``scripts/reproduce_nano.py`` work folder's runs, to compare with
``benchmarks/work_folders.py --extra soup-...``.

    PYTHONPATH=src .venv/bin/python benchmarks/soup.py --work W [--seeds 0 1 2] [--overwrite]

Every GRPO run of a folder starts from the same SFT model, so their weights can be averaged. Writes
``W/runs/soup-ref/model`` (the reference GRPO runs, each at the step validation stopped it, as the
pipeline stops them), ``soup-loop`` (the closed-loop runs), ``soup-all`` (both) and, where
``W/runs/sft-real-seed*`` exist (the SFT recipe with other trainer seeds), ``soup-sft`` (those and
``sft-real``): uniform averages in float32, stored in the first model's dtype, beside a copy of its
other files (config, tokenizer, tracker settings) and ``soup.json`` naming the ingredients.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import reproduce_nano as reproduce  # noqa: E402

from r1track.errors import R1TrackError, exit_status  # noqa: E402

WEIGHTS = "model.safetensors"


def average(models: list[Path], out: Path) -> None:
    """``out``: the uniform average of ``models``' weights (same names and shapes), written atomically."""
    from safetensors.torch import load_file, save_file

    for model in models:
        if not (model / WEIGHTS).is_file():
            raise R1TrackError(f"{model}: no {WEIGHTS} (soups average full checkpoints)")
    states = [load_file(m / WEIGHTS) for m in models]
    for model, state in zip(models[1:], states[1:]):
        if {k: v.shape for k, v in state.items()} != {k: v.shape for k, v in states[0].items()}:
            raise R1TrackError(f"{model}: other weights than {models[0]} (names or shapes differ)")
    soup = {k: (sum(s[k].float() for s in states) / len(states)).to(v.dtype) for k, v in states[0].items()}
    staging = Path(tempfile.mkdtemp(prefix=".soup-", dir=out.parent))
    for f in models[0].iterdir():
        if f.is_file() and f.name != WEIGHTS:
            shutil.copy(f, staging / f.name)
    save_file(soup, staging / WEIGHTS, metadata={"format": "pt"})
    (staging / "soup.json").write_text(json.dumps({"ingredients": [str(m) for m in models]}, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a reproduce_nano.py work folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--overwrite", action="store_true", help="replace soups already written")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    p = reproduce.Pipeline.from_settings(work, reproduce.recorded_settings(work), args.threads)
    stops = p.choose_stops(args.seeds)  # evaluates the checkpoints on validation where not done yet
    runs = {v: [Path(s["model"]) for run, s in stops.items() if run.split("-")[1] == v] for v in ("ref", "loop")}
    soups = {"soup-ref": runs["ref"], "soup-loop": runs["loop"], "soup-all": runs["ref"] + runs["loop"]}
    sft_seeds = sorted(work.glob("runs/sft-real-seed*/model"))
    if sft_seeds:
        soups["soup-sft"] = [work / "runs" / "sft-real" / "model", *sft_seeds]
    for name, models in soups.items():
        out = work / "runs" / name / "model"
        if out.is_dir() and not args.overwrite:
            print(f"{out}: exists (--overwrite to replace)")
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        average(models, out)
        print(f"{out}: the average of {len(models)} models")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main, "soup.py"))
