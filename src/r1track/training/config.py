"""Training recipes: one YAML file per run, validated by pydantic models plus TRL's own config.

A recipe has these top-level keys (see ``recipes/*.yaml``)::

    stage: grpo                 # or sft
    model:  {...}               # ModelArgs: checkpoint, dtype, LoRA, vision tower
    data:   {...}               # DataArgs: saved pairs or how to build them; validation sequences
    rewards: {...}              # RewardArgs (GRPO only): reward names and weights
    batch:  {...}               # BatchArgs: prompts per optimiser step / per rollout, any GPU count
    trainer: {...}              # fields of trl.GRPOConfig / trl.SFTConfig, passed through unchanged

Unknown keys and wrong value types anywhere (our sections or TRL's fields) raise
:class:`~r1track.errors.DataError` naming the file, the line and the key (pydantic finds them; the YAML
node of the key gives the line). ``key=value`` overrides (dotted paths, values parsed as YAML) are
applied before checking, e.g. ``trainer.learning_rate=2e-6 model.lora=null``.

``batch`` exists because TRL counts its batch sizes in completions per device, while the reference
recipe counts prompts over all GPUs: ``batch_plan`` turns "128 prompts per optimiser step, 768 per
rollout" into ``gradient_accumulation_steps`` and ``generation_batch_size`` for the number of processes
actually launched, so one recipe runs unchanged on 1, 4 or 8 GPUs with the same optimiser batch.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from r1track.errors import DataError, R1TrackError

STAGES = ("sft", "grpo")


# --------------------------------------------------------------------------- recipe sections


class _Section(BaseModel):
    # strict: no silent "3" -> 3 or true -> 1; YAML already gives numbers, lists and mappings their types
    model_config = ConfigDict(extra="forbid", strict=True)


class LoraArgs(_Section):
    """A LoRA adapter (peft). ``all-linear``: every linear layer but the output head, vision tower included."""

    rank: int = 12
    alpha: int = 24
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"


class ModelArgs(_Section):
    """The checkpoint to train and how to load it."""

    name_or_path: str = ""
    family: str | None = None  # None: detected from the checkpoint's config (model_type)
    dtype: str = "bfloat16"  # weights dtype: float32 | bfloat16 | float16 | auto
    attn_implementation: str | None = None  # sdpa | flash_attention_2 | eager; None: transformers' choice
    trust_remote_code: bool = False
    freeze_vision: bool = False  # the reference trains the vision tower too
    lora: LoraArgs | None = None
    merge_lora: bool = True  # save the merged model (loads in the tracker by path) instead of the adapter
    # GRPO: the policy the KL term pulls towards (None: the starting model), e.g. the SFT model in later
    # rounds of closed-loop GRPO, so that the rounds do not each move the anchor
    kl_reference: str | None = None
    min_pixels: int | None = None  # processor resize bounds; None keeps the checkpoint's
    max_pixels: int | None = None


class BuildArgs(_Section):
    """Build the pair dataset at start-up from a tracking dataset (instead of a saved one)."""

    dataset: str = ""  # a name of r1track.datasets.DATASETS
    root: str = ""
    split: str | None = "train"
    samples: int | None = None  # None: the pairs module's default (one per sequence)
    seed: int = 0
    options: dict = Field(default_factory=dict)  # fields of r1track.training.pairs.PairOptions


class ValidationArgs(_Section):
    """Sequences tracked with the live policy during training; their AO is logged as ``val/ao``."""

    dataset: str = ""
    root: str = ""
    split: str | None = "val"
    sequences: int = 4  # the first N sequences, in name order
    max_frames: int | None = 50  # frames per sequence (from the first); None: all
    every_n_steps: int = 100  # optimiser steps between runs; 0: only when the trainer evaluates
    max_new_tokens: int = 64  # answer budget per frame (no-think answers need ~20 tokens)
    tracker: dict = Field(default_factory=dict)  # keyword options of r1track.trackers.mllm.MLLMTracker


class DataArgs(_Section):
    train: str | list[str] | None = None  # pair dataset(s) saved by `r1track build-pairs` (several: concatenated)
    build: BuildArgs | None = None  # or: build one now
    validation: ValidationArgs | None = None


class RewardArgs(_Section):
    names: list[str] = Field(default_factory=list)  # names in r1track.training.rewards.REWARDS
    weights: list[float] | None = None  # one per name; None: all 1.0


class BatchArgs(_Section):
    """Batch sizes in prompts over all processes, as the reference states them."""

    prompts_per_step: int = 0  # prompts per optimiser step (GRPO: each with num_generations completions)
    prompts_per_rollout: int | None = None  # GRPO: prompts generated for at once, then split into steps


class Recipe(_Section):
    stage: str = ""
    model: ModelArgs = Field(default_factory=ModelArgs)
    data: DataArgs = Field(default_factory=DataArgs)
    trainer: dict = Field(default_factory=dict)
    rewards: RewardArgs | None = None
    batch: BatchArgs | None = None
    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        """The file it came from (not a YAML key)."""
        return self._path


# --------------------------------------------------------------------------- YAML with line numbers


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-6`` as a float (YAML 1.1 wants ``1.0e-6``): lr typos are common."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key, by dotted path, so errors can point at the line."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node, prefix):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                path = prefix + (str(key.value),)
                lines[path] = key.start_mark.line + 1
                walk(value, path)

    try:
        walk(yaml.compose(text, Loader=_Loader), ())
    except yaml.YAMLError:
        pass
    return lines


class _Source:
    """Where recipe values come from: the file (with line numbers) and the command-line overrides."""

    def __init__(self, path: Path, text: str, overrides: dict[tuple[str, ...], str]):
        self.path = path
        self.lines = _key_lines(text)
        self.overrides = overrides

    def error(self, keys: tuple[str, ...], message: str) -> DataError:
        for n in range(len(keys), 0, -1):
            if keys[:n] in self.overrides:
                return DataError(self.path, f"override {self.overrides[keys[:n]]!r}: {message}")
        line = next((self.lines[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in self.lines), None)
        return DataError(self.path, message, line)


def _apply_overrides(raw: dict, overrides: list[str]) -> dict[tuple[str, ...], str]:
    applied = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise R1TrackError(f"override {item!r} must look like section.key=value")
        keys = tuple(key.strip().split("."))
        node = raw
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[keys[-1]] = yaml.load(text, Loader=_Loader)
        applied[keys] = item
    return applied


def _section_fields(keys: tuple[str, ...]) -> list[str]:
    """The keys of the recipe section at ``keys``."""
    section: Any = Recipe
    for k in keys:
        hint = section.model_fields[k].annotation
        section = next(t for t in typing.get_args(hint) or (hint,) if isinstance(t, type) and issubclass(t, BaseModel))
    return list(section.model_fields)


def _validation_error(error: ValidationError, raw: dict, source: _Source) -> DataError:
    """pydantic's first complaint as a DataError naming the key (its dotted path) and its line."""
    first = error.errors()[0]
    keys: tuple[str, ...] = ()
    node: Any = raw
    for part in first["loc"]:  # the part of the location that exists in the recipe (not union tags)
        if not isinstance(node, dict) or part not in node:
            break
        keys, node = keys + (str(part),), node[part]
    where = ".".join(keys) or "the recipe"
    if first["type"] == "extra_forbidden":
        return source.error(
            keys,
            f"unknown key {where!r}; known keys of {'.'.join(keys[:-1]) or 'the recipe'}: "
            f"{', '.join(_section_fields(keys[:-1]))}",
        )
    return source.error(keys, f"{where}: {first['msg'].lower()}, got {first['input']!r}")


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe file, apply ``key=value`` overrides, check every key and value type.

    TRL's own fields (``trainer:``) are checked against the config class of the stage here too; the
    values themselves are checked when :func:`trainer_config` builds that class.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "recipe file not found")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise DataError(
            path, f"not valid YAML: {getattr(e, 'problem', e)}", mark.line + 1 if mark is not None else None
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise DataError(path, "a recipe must be a mapping with stage, model, data and trainer keys")
    source = _Source(path, text, _apply_overrides(raw, list(overrides)))
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as e:
        raise _validation_error(e, raw, source) from None
    recipe._path = path
    _check_recipe(recipe, source)
    return recipe


def _check_recipe(recipe: Recipe, source: _Source) -> None:
    if recipe.stage not in STAGES:
        raise source.error(("stage",), f"stage must be one of {', '.join(STAGES)}, got {recipe.stage!r}")
    if not recipe.model.name_or_path:
        raise source.error(("model",), "model.name_or_path is required")
    if recipe.model.dtype not in ("float32", "bfloat16", "float16", "auto"):
        raise source.error(
            ("model", "dtype"), f"model.dtype must be float32, bfloat16, float16 or auto, got {recipe.model.dtype!r}"
        )
    if recipe.model.kl_reference and (recipe.stage != "grpo" or recipe.model.lora is not None):
        raise source.error(
            ("model", "kl_reference"),
            "model.kl_reference is for GRPO with full fine-tuning (with LoRA the reference is the adapter switched off)",
        )
    data = recipe.data
    if (data.train is None) == (data.build is None):
        raise source.error(("data",), "give exactly one of data.train (saved pairs) and data.build")
    if data.train == []:
        raise source.error(("data", "train"), "data.train is an empty list: give one pair dataset or several")
    if recipe.stage == "grpo":
        if recipe.rewards is None or not recipe.rewards.names:
            raise source.error(("rewards",), "a GRPO recipe needs rewards.names")
        from r1track.training.rewards import get_rewards

        try:
            get_rewards(recipe.rewards.names)
        except R1TrackError as e:
            raise source.error(("rewards", "names"), str(e)) from None
        weights = recipe.rewards.weights
        if weights is not None and len(weights) != len(recipe.rewards.names):
            raise source.error(
                ("rewards", "weights"),
                f"rewards.weights has {len(weights)} values for {len(recipe.rewards.names)} rewards",
            )
    elif recipe.rewards is not None:
        raise source.error(("rewards",), "rewards belong to GRPO recipes only")
    if recipe.batch is not None:
        if recipe.batch.prompts_per_step <= 0:
            raise source.error(("batch", "prompts_per_step"), "batch.prompts_per_step must be positive")
        if recipe.stage == "sft" and recipe.batch.prompts_per_rollout is not None:
            raise source.error(("batch", "prompts_per_rollout"), "prompts_per_rollout is for GRPO recipes")
        taken = {"gradient_accumulation_steps", "generation_batch_size", "steps_per_generation"}
        clash = sorted(taken & set(recipe.trainer))
        if clash:
            raise source.error(("trainer", clash[0]), f"trainer.{clash[0]} is derived from batch:; set one")
    cls = trl_config_class(recipe.stage)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in recipe.trainer:
        if key not in known:
            raise source.error(("trainer", key), f"unknown key 'trainer.{key}': not a field of trl.{cls.__name__}")


# --------------------------------------------------------------------------- TRL config


def trl_config_class(stage: str):
    if stage == "grpo":
        from trl import GRPOConfig

        return GRPOConfig
    from trl import SFTConfig

    return SFTConfig


def world_size() -> int:
    """Processes of this launch (``accelerate launch`` / ``torchrun`` set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def batch_plan(recipe: Recipe, num_processes: int) -> dict[str, int]:
    """TRL batch fields giving ``recipe.batch`` on ``num_processes`` processes.

    Optimiser batch (completions) = per_device_train_batch_size x processes x gradient_accumulation_steps;
    GRPO rollout = generation_batch_size completions (TRL derives steps_per_generation from it).
    """
    if recipe.batch is None:
        return {}
    per_device = int(recipe.trainer.get("per_device_train_batch_size", 8))
    group = int(recipe.trainer.get("num_generations", 8)) if recipe.stage == "grpo" else 1
    step = recipe.batch.prompts_per_step * group
    micro = per_device * num_processes
    where = recipe.path or "recipe"
    if step % micro:
        raise DataError(
            where,
            f"batch.prompts_per_step={recipe.batch.prompts_per_step} x {group} completions "
            f"= {step} is not a multiple of per_device_train_batch_size {per_device} x "
            f"{num_processes} processes = {micro}",
        )
    plan = {"gradient_accumulation_steps": step // micro}
    if recipe.stage == "grpo":
        rollout = recipe.batch.prompts_per_rollout or recipe.batch.prompts_per_step
        if rollout % recipe.batch.prompts_per_step:
            raise DataError(
                where,
                f"batch.prompts_per_rollout={rollout} must be a multiple of "
                f"batch.prompts_per_step={recipe.batch.prompts_per_step}",
            )
        plan["generation_batch_size"] = rollout * group
    return plan


def trainer_kwargs(
    recipe: Recipe, output_dir: str | Path | None = None, num_processes: int | None = None
) -> dict[str, Any]:
    """Keyword arguments of the stage's TRL config: ``trainer:`` plus what other sections imply."""
    kwargs = copy.deepcopy(recipe.trainer)
    if output_dir is not None:
        kwargs["output_dir"] = str(output_dir)
    if not kwargs.get("output_dir"):
        raise DataError(recipe.path or "recipe", "no output directory: set trainer.output_dir or --output-dir")
    kwargs.update(batch_plan(recipe, num_processes or world_size()))
    if recipe.stage == "grpo" and recipe.rewards is not None and recipe.rewards.weights is not None:
        kwargs["reward_weights"] = list(recipe.rewards.weights)
    cls = trl_config_class(recipe.stage)
    names = {f.name for f in dataclasses.fields(cls)}
    # transformers 5.x renamed gradient_checkpointing (TRL's default: on); pass the new name where it
    # exists, so the deprecation warning does not fire on every run
    if "activation_checkpointing" in names and "activation_checkpointing" not in kwargs:
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing", True)
    return kwargs


def trainer_config(recipe: Recipe, output_dir: str | Path | None = None, num_processes: int | None = None, **changes):
    """The ``trl.GRPOConfig`` / ``trl.SFTConfig`` of a recipe; TRL's own checks become DataError."""
    kwargs = trainer_kwargs(recipe, output_dir, num_processes)
    kwargs.update(changes)
    cls = trl_config_class(recipe.stage)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise DataError(recipe.path or "recipe", f"trl.{cls.__name__} rejects the trainer settings: {e}") from None


def bf16_capable() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def check_recipe(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), num_processes: tuple[int, ...] = (1,)
) -> Recipe:
    """Load a recipe and build its TRL config for each process count, without a GPU.

    transformers refuses ``bf16=True`` at construction on a machine without a bf16 GPU unless
    ``use_cpu`` is set, so on such a machine the check adds ``use_cpu=True``: every other rule
    (batch divisibility, incompatible options) is checked as it will be on the GPUs.
    """
    recipe = load_recipe(path, overrides)
    changes = {}
    if not bf16_capable():
        changes["use_cpu"] = True
    for n in num_processes:
        trainer_config(recipe, output_dir="unused-check-output", num_processes=n, **changes)
    return recipe
