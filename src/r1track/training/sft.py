"""Supervised fine-tuning on pair datasets with TRL's SFTTrainer (the reference's SFT baseline).

The pairs are conversational prompt-completion rows with images: the prompt (two image placeholders
and the tracking question) is context, the loss is on the completion (the box answer) only --
``completion_only_loss`` -- which is what the reference's LLaMA-Factory SFT did. The reference: LoRA
rank 12 on all linear layers (vision tower included), lr 1e-5, 2 epochs, cosine schedule, warm-up 10%,
batch 16, bf16 (``recipes/sft-lora-qwen2.5vl-3b.yaml``). The saved model (LoRA merged) is both a GRPO
warm start (``model.name_or_path`` of a GRPO recipe) and a tracker (``r1track eval --model DIR``).
"""

from __future__ import annotations

from pathlib import Path

from r1track.training import stage
from r1track.training.config import Recipe, trainer_config


def build_trainer(recipe: Recipe, output_dir: str | Path | None = None, callbacks: list | None = None):
    """``(trainer, processor, family)`` ready to ``train()``; the validation callback is attached."""
    from trl import SFTTrainer

    # the TRL config first: under DeepSpeed ZeRO-3 it must exist before the weights load, so that
    # from_pretrained partitions them instead of loading a full copy per process
    args = trainer_config(recipe, output_dir)
    model, processor, family = stage.load_policy(recipe.model)
    dataset = stage.train_pairs(recipe, family)
    validation = stage.validation_callback(recipe, processor, family)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=stage.lora_config(recipe.model),
        callbacks=[*(callbacks or []), *([validation] if validation else [])],
    )
    if validation is not None:
        validation.attach(trainer)
    return trainer, processor, family


def train(recipe: Recipe, output_dir: str | Path | None = None, overwrite: bool = False, resume: bool = False) -> Path:
    """Run the SFT stage of ``recipe``; returns the saved model folder (``<output_dir>/model``)."""
    return stage.run(recipe, build_trainer, output_dir, overwrite, resume)
