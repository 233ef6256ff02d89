"""GRPO on pair datasets with TRL's GRPOTrainer: the R1-Track reinforcement-learning stage.

Per prompt (two images + the tracking question) the policy samples ``num_generations`` answers; each is
scored by the recipe's rule-based rewards (``r1track.training.rewards``; the pair dataset's columns
``solution``, ``task``, ``image_size``, ... reach them as keyword arguments); advantages are the rewards
normalised within the group; the clipped policy-gradient loss plus ``beta`` x KL to the starting policy
is minimised. How the reference recipe (EasyR1) maps onto TRL's settings, and where they differ, is in
``docs/training.md``; the recipes are in ``recipes/``.

The starting policy is a full checkpoint (the base model, or an SFT model saved merged); the KL term's
reference policy is the starting one unless ``model.kl_reference`` names another checkpoint; with
``model.lora`` an adapter is trained and the reference policy is the adapter switched off, so no second
model is loaded.
"""

from __future__ import annotations

from pathlib import Path

from r1track.errors import R1TrackError
from r1track.training import stage
from r1track.training.config import Recipe, trainer_config


def reward_functions(recipe: Recipe) -> list:
    from r1track.training.rewards import get_rewards

    return get_rewards(recipe.rewards.names)


def build_trainer(
    recipe: Recipe,
    output_dir: str | Path | None = None,
    callbacks: list | None = None,
    reward_funcs: list | None = None,
):
    """``(trainer, processor, family)`` ready to ``train()``.

    ``reward_funcs`` replaces the recipe's rewards (callables with TRL's signature), for experiments
    and tests; the recipe's ``rewards.weights`` still apply when given.
    """
    from trl import GRPOTrainer

    if recipe.stage != "grpo":
        raise R1TrackError(f"{recipe.path}: a {recipe.stage} recipe, not a GRPO one")
    # the TRL config first: under DeepSpeed ZeRO-3 it must exist before the weights load, so that
    # from_pretrained partitions them instead of loading a full copy per process
    args = trainer_config(recipe, output_dir)
    if recipe.model.kl_reference:
        _check_kl_reference(recipe, args.beta)  # before minutes of loading weights and pairs
    model, processor, family = stage.load_policy(recipe.model)
    dataset = stage.train_pairs(recipe, family)
    validation = stage.validation_callback(recipe, processor, family)
    start = model.config._name_or_path
    if recipe.model.kl_reference:
        # TRL loads the KL reference policy from the policy config's _name_or_path (and prepares it for
        # DeepSpeed/FSDP like its own); pointed elsewhere for the construction only
        model.config._name_or_path = recipe.model.kl_reference
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs if reward_funcs is not None else reward_functions(recipe),
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=stage.lora_config(recipe.model),
        callbacks=[*(callbacks or []), *([validation] if validation else [])],
    )
    model.config._name_or_path = start
    if validation is not None:
        validation.attach(trainer)
    return trainer, processor, family


def _check_kl_reference(recipe: Recipe, beta: float) -> None:
    from transformers import AutoConfig

    where = recipe.path or "recipe"
    if not beta:
        raise R1TrackError(f"{where}: model.kl_reference has no effect with trainer.beta 0 (no KL term)")
    try:
        AutoConfig.from_pretrained(recipe.model.kl_reference, trust_remote_code=recipe.model.trust_remote_code)
    except (OSError, ValueError) as e:
        raise R1TrackError(f"{where}: cannot load model.kl_reference {recipe.model.kl_reference!r}: {e}") from None


def train(
    recipe: Recipe,
    output_dir: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    reward_funcs: list | None = None,
) -> Path:
    """Run the GRPO stage of ``recipe``; returns the saved model folder (``<output_dir>/model``)."""
    return stage.run(recipe, build_trainer, output_dir, overwrite, resume, reward_funcs=reward_funcs)
