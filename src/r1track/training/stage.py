"""What the SFT and GRPO stages share: the policy checkpoint, the pair dataset, and saving the result.

The saved model folder (``<output_dir>/model``) holds safetensors weights, the config and the processor
the policy was trained with, so ``MLLMTracker`` with the transformers backend loads it by path and sees
exactly the image resize and chat template of training. A LoRA run saves the merged model when
``model.merge_lora`` is true (the default), else the adapter (``adapter_model.safetensors``). The
trainer's checkpoints (``<output_dir>/checkpoint-<step>``, with ``trainer.save_strategy``) get the same
tracker settings, so a full fine-tuning checkpoint tracks by path like the final model (early stopping).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import yaml
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from r1track.atomic import atomic_write_text
from r1track.errors import DataError, R1TrackError
from r1track.training.card import push_policy, write_model_card
from r1track.training.config import LoraArgs, ModelArgs, Recipe

MODEL_DIR = "model"  # the final policy, inside the trainer's output directory


# --------------------------------------------------------------------------- policy


def _torch_dtype(name: str):
    import torch

    return "auto" if name == "auto" else getattr(torch, name)


def load_processor(margs: ModelArgs):
    """The checkpoint's processor, left-padded (batched generation), with the recipe's resize bounds."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(margs.name_or_path, trust_remote_code=margs.trust_remote_code)
    processor.tokenizer.padding_side = "left"
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None and (margs.min_pixels or margs.max_pixels):
        size = dict(getattr(image_processor, "size", None) or {})
        if margs.min_pixels:
            size["shortest_edge"] = int(margs.min_pixels)
        if margs.max_pixels:
            size["longest_edge"] = int(margs.max_pixels)
        image_processor.size = size
        for attr, value in (("min_pixels", margs.min_pixels), ("max_pixels", margs.max_pixels)):
            if value and hasattr(image_processor, attr):
                setattr(image_processor, attr, int(value))
    return processor


def load_policy(margs: ModelArgs):
    """``(model, processor, family)``: weights from safetensors only, vision tower frozen on request."""
    from transformers import AutoModelForImageTextToText

    from r1track.families import detect_family, get_family

    kwargs = {"dtype": _torch_dtype(margs.dtype), "trust_remote_code": margs.trust_remote_code, "use_safetensors": True}
    if margs.attn_implementation:
        kwargs["attn_implementation"] = margs.attn_implementation
    try:
        model = AutoModelForImageTextToText.from_pretrained(margs.name_or_path, **kwargs)
    except OSError as e:
        raise R1TrackError(f"cannot load the model {margs.name_or_path!r}: {e}") from None
    processor = load_processor(margs)
    family = get_family(margs.family or detect_family(model.config)).name
    if margs.freeze_vision:
        for p in vision_parameters(model):
            p.requires_grad_(False)
    return model, processor, family


def vision_parameters(model) -> list:
    """Parameters of the vision tower (and its merger), found by the module name Qwen-VL models use."""
    inner = getattr(model, "model", model)
    visual = getattr(inner, "visual", None) or getattr(model, "visual", None)
    if visual is None:
        raise R1TrackError(f"{type(model).__name__} has no `visual` module to freeze")
    return list(visual.parameters())


def lora_config(margs: ModelArgs):
    """peft's LoraConfig for the recipe's adapter, or None (full fine-tuning).

    With ``freeze_vision`` the vision tower gets no adapter either (``all-linear`` would add some).
    """
    lora: LoraArgs | None = margs.lora
    if lora is None:
        return None
    from peft import LoraConfig

    exclude = r".*\bvisual\..*" if margs.freeze_vision else None
    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        exclude_modules=exclude,
        task_type="CAUSAL_LM",
    )


# --------------------------------------------------------------------------- data


def pair_options(recipe: Recipe, family: str):
    """PairOptions of ``data.build.options`` (family defaults to the policy's); bad keys name the file."""
    from r1track.training.pairs import PairOptions

    options = dict(recipe.data.build.options)
    options.setdefault("family", family)
    try:
        return PairOptions(**options)
    except TypeError as e:
        raise DataError(recipe.path or "recipe", f"data.build.options: {e}") from None
    except R1TrackError as e:
        raise DataError(recipe.path or "recipe", f"data.build.options: {e}") from None


def train_pairs(recipe: Recipe, family: str):
    """The pair dataset: the saved one (``data.train``) or built now (``data.build``); family checked."""
    from r1track.training import pairs

    if recipe.data.train is not None:
        dataset = pairs.load_pairs(recipe.data.train)
    else:
        from r1track import datasets as tracking_datasets

        b = recipe.data.build
        sequences = tracking_datasets.load(b.dataset, b.root, b.split)
        dataset = pairs.build_pairs(sequences, b.samples, b.seed, pair_options(recipe, family), progress=False)
    found = sorted(set(dataset["family"]))
    if found != [family]:
        train = recipe.data.train
        where = "data.build" if train is None else train if isinstance(train, str) else ", ".join(train)
        raise R1TrackError(
            f"{where}: pairs were written for the {', '.join(found)} family but the model is "
            f"{family}: coordinates would be wrong; rebuild the pairs with --family {family}"
        )
    return dataset


def validation_callback(recipe: Recipe, processor, family: str):
    """The tracking validation callback of ``data.validation``, or None. The policy is tracked with the start
    checkpoint's tracker settings (``r1track.json``: prompt, crop size, factors), the way it will be run,
    under the recipe's ``data.validation.tracker`` options."""
    from r1track.trackers.mllm import TRACKER_OPTIONS, checkpoint_settings
    from r1track.training.callbacks import TrackingValidationCallback

    sequences = validation_sequences(recipe)
    if not sequences:
        return None
    v = recipe.data.validation
    saved = {k: x for k, x in checkpoint_settings(recipe.model.name_or_path).items() if k in TRACKER_OPTIONS}
    saved.pop("family", None)  # the family comes from the policy's config (``family``)
    return TrackingValidationCallback(
        sequences,
        v.every_n_steps,
        processor,
        family=family,
        tracker_options={**saved, **v.tracker},
        max_frames=v.max_frames,
        max_new_tokens=v.max_new_tokens,
    )


def validation_sequences(recipe: Recipe) -> list:
    """The first ``sequences`` sequences (by name) of the validation split, or [] when none is set."""
    v = recipe.data.validation
    if v is None or v.sequences <= 0:
        return []
    from r1track import datasets as tracking_datasets

    sequences = sorted(tracking_datasets.load(v.dataset, v.root, v.split), key=lambda s: s.name)
    return sequences[: v.sequences]


# --------------------------------------------------------------------------- output


def prepare_output(recipe: Recipe, output_dir: str | Path | None, overwrite: bool) -> Path:
    """The run's output folder (``--output-dir`` or ``trainer.output_dir``), created.

    A finished model there is never replaced unless asked; checkpoints of an interrupted run are kept
    (resume with ``--resume``).
    """
    output_dir = output_dir or recipe.trainer.get("output_dir")
    if not output_dir:
        raise DataError(recipe.path or "recipe", "no output directory: set trainer.output_dir or --output-dir")
    out = Path(output_dir)
    final = out / MODEL_DIR
    if final.exists() and not overwrite:
        raise R1TrackError(f"{final} already holds a trained model; pass --overwrite to train again")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_recipe(recipe: Recipe, out: Path) -> None:
    """The effective recipe (overrides applied), beside the checkpoints, for the record."""
    data = recipe.model_dump()
    text = f"# effective recipe of this run (from {recipe.path})\n" + yaml.safe_dump(data, sort_keys=False)
    atomic_write_text(out / "recipe.yaml", text)


def write_log(trainer, out: Path) -> None:
    atomic_write_text(out / "log_history.json", json.dumps(trainer.state.log_history, indent=1, default=str) + "\n")


def run(
    recipe: Recipe,
    build_trainer,
    output_dir: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    **build_kwargs,
) -> Path:
    """Run one training stage: ``build_trainer(recipe, out, **build_kwargs) -> (trainer, processor,
    family)``, train (resuming from the last checkpoint when asked), save the policy and the log.
    Returns the saved model folder (``<output_dir>/model``, with a Hub model card; pushed to the Hub with
    the trainer's ``push_to_hub`` options)."""
    out = prepare_output(recipe, output_dir, overwrite)
    trainer, processor, family = build_trainer(recipe, out, **build_kwargs)
    trainer.add_callback(SettingsInCheckpoints(recipe.model.name_or_path))
    write_recipe(recipe, out)
    trainer.train(resume_from_checkpoint=True if resume else None)
    final = save_policy(trainer, recipe.model, processor, out)
    if trainer.is_world_process_zero():
        write_log(trainer, out)
        write_model_card(final, recipe, trainer.state.log_history, family)
        if trainer.args.push_to_hub:
            print(f"pushed the policy to the Hub: {push_policy(final, trainer.args)}")
    return final


def keep_settings(start: str, staging: Path) -> None:
    """Carry the start checkpoint's tracker settings (``r1track.json``: crop size, prompt...) to the
    trained policy, which is tracked the way it was trained."""
    from r1track.nano import SETTINGS_FILE

    settings = Path(start) / SETTINGS_FILE
    if settings.is_file():
        shutil.copy2(settings, staging / SETTINGS_FILE)


class SettingsInCheckpoints(TrainerCallback):
    """Each checkpoint the trainer writes gets the start checkpoint's tracker settings (``keep_settings``)."""

    def __init__(self, start: str):
        self.start = start

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            keep_settings(self.start, Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")


def save_policy(trainer, margs: ModelArgs, processor, out: Path) -> Path:
    """Write the final policy to ``out/model`` atomically (staging folder renamed into place).

    Full fine-tuning goes through ``trainer.save_model`` (gathers ZeRO-3 / FSDP shards); a LoRA policy is
    merged into its base weights with ``merge_and_unload`` when ``merge_lora`` (one process).
    """
    final = out / MODEL_DIR
    staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIR}-", dir=out)) if trainer.is_world_process_zero() else None
    model = trainer.accelerator.unwrap_model(trainer.model)
    is_peft = hasattr(model, "peft_config")
    try:
        if is_peft and margs.merge_lora:
            if staging is not None:
                merged = model.merge_and_unload()
                merged.save_pretrained(staging)
                processor.save_pretrained(staging)
        else:
            trainer.save_model(str(staging) if staging is not None else None)
            if staging is not None:
                processor.save_pretrained(staging)
                (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle: keep it out of models
        trainer.accelerator.wait_for_everyone()
        if staging is not None:
            keep_settings(margs.name_or_path, staging)
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
