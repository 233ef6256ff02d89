"""The ``r1track train {sft,grpo}`` command: one stage from a YAML recipe.

    r1track train grpo --config recipes/r1track-100k-qwen2.5vl-3b.yaml [--output-dir D] \\
        [trainer.learning_rate=2e-6 model.lora=null ...]

Several GPUs: ``accelerate launch --config_file configs/accelerate/zero2.yaml -m r1track.cli train ...``.
``--check`` validates the recipe (keys, TRL settings, batch arithmetic) without loading anything.
"""

from __future__ import annotations

import argparse

from r1track.errors import R1TrackError
from r1track.training.config import STAGES, batch_plan, check_recipe, load_recipe, world_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="training stage")
    parser.add_argument("--config", required=True, help="recipe YAML file (see recipes/)")
    parser.add_argument("--output-dir", default=None, help="run folder (default: the recipe's trainer.output_dir)")
    parser.add_argument("--overwrite", action="store_true", help="train again over a finished run's model")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the run folder")
    parser.add_argument(
        "--check", action="store_true", help="only validate the recipe (and its TRL config) and print the batch plan"
    )
    parser.add_argument(
        "--num-processes",
        type=int,
        default=None,
        help="with --check: plan the batch for this many processes (default: WORLD_SIZE or 1)",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="recipe overrides by dotted key, values in YAML, e.g. trainer.num_train_epochs=1",
    )
    # Plain parse_args takes all positionals at their first run ("grpo"), so overrides written after the
    # options would be rejected; the intermixed parse collects them wherever they are.
    parser.parse_args = parser.parse_intermixed_args  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> int:
    if args.check:
        processes = args.num_processes or world_size()
        recipe = check_recipe(args.config, args.overrides, num_processes=(processes,))
        _check_stage(recipe, args.stage)
        print(f"{args.config}: valid {recipe.stage} recipe for {recipe.model.name_or_path}")
        plan = batch_plan(recipe, processes)
        if plan:
            fields = ", ".join(f"{k}={v}" for k, v in plan.items())
            print(f"on {processes} process(es): {fields}")
        return 0
    recipe = load_recipe(args.config, args.overrides)
    _check_stage(recipe, args.stage)
    if recipe.stage == "sft":
        from r1track.training.sft import train
    else:
        from r1track.training.grpo import train
    final = train(recipe, args.output_dir, overwrite=args.overwrite, resume=args.resume)
    print(f"saved the {recipe.stage} policy to {final}")
    return 0


def _check_stage(recipe, stage: str) -> None:
    if recipe.stage != stage:
        raise R1TrackError(f"{recipe.path} is a {recipe.stage} recipe; run `r1track train {recipe.stage}`")
