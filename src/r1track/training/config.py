"""Training recipes: one YAML file per run, loaded into typed dataclasses plus TRL's own config.

A recipe has these top-level keys (see ``recipes/*.yaml``)::

    stage: grpo                 # or sft
    model:  {...}               # ModelArgs: checkpoint, dtype, LoRA, vision tower
    data:   {...}               # DataArgs: saved pairs or how to build them; validation sequences
    rewards: {...}              # RewardArgs (GRPO only): reward names and weights
    batch:  {...}               # BatchArgs: prompts per optimiser step / per rollout, any GPU count
    trainer: {...}              # fields of trl.GRPOConfig / trl.SFTConfig, passed through unchanged

Unknown keys anywhere (our sections or TRL's fields) raise :class:`~r1track.errors.DataError` naming
the file, the line and the key. ``key=value`` overrides (dotted paths, values parsed as YAML) are
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
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from r1track.errors import DataError, R1TrackError

STAGES = ("sft", "grpo")


# --------------------------------------------------------------------------- recipe sections


@dataclass
class LoraArgs:
    """A LoRA adapter (peft). ``all-linear``: every linear layer but the output head, vision tower included."""

    rank: int = 12
    alpha: int = 24
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"


@dataclass
class ModelArgs:
    """The checkpoint to train and how to load it."""

    name_or_path: str = ""
    family: str | None = None  # None: detected from the checkpoint's config (model_type)
    dtype: str = "bfloat16"  # weights dtype: float32 | bfloat16 | float16 | auto
    attn_implementation: str | None = None  # sdpa | flash_attention_2 | eager; None: transformers' choice
    trust_remote_code: bool = False
    freeze_vision: bool = False  # the reference trains the vision tower too
    lora: LoraArgs | None = None
    merge_lora: bool = True  # save the merged model (loads in the tracker by path) instead of the adapter
    min_pixels: int | None = None  # processor resize bounds; None keeps the checkpoint's
    max_pixels: int | None = None


@dataclass
class BuildArgs:
    """Build the pair dataset at start-up from a tracking dataset (instead of a saved one)."""

    dataset: str = ""  # a name of r1track.datasets.DATASETS
    root: str = ""
    split: str | None = "train"
    samples: int | None = None  # None: the pairs module's default (one per sequence)
    seed: int = 0
    options: dict = field(default_factory=dict)  # fields of r1track.training.pairs.PairOptions


@dataclass
class ValidationArgs:
    """Sequences tracked with the live policy during training; their AO is logged as ``val/ao``."""

    dataset: str = ""
    root: str = ""
    split: str | None = "val"
    sequences: int = 4  # the first N sequences, in name order
    max_frames: int | None = 50  # frames per sequence (from the first); None: all
    every_n_steps: int = 100  # optimiser steps between runs; 0: only when the trainer evaluates
    max_new_tokens: int = 64  # answer budget per frame (no-think answers need ~20 tokens)
    tracker: dict = field(default_factory=dict)  # keyword options of r1track.trackers.mllm.MLLMTracker


@dataclass
class DataArgs:
    train: str | None = None  # a pair dataset saved by `r1track build-pairs`
    build: BuildArgs | None = None  # or: build one now
    validation: ValidationArgs | None = None


@dataclass
class RewardArgs:
    names: list[str] = field(default_factory=list)  # names in r1track.training.rewards.REWARDS
    weights: list[float] | None = None  # one per name; None: all 1.0


@dataclass
class BatchArgs:
    """Batch sizes in prompts over all processes, as the reference states them."""

    prompts_per_step: int = 0  # prompts per optimiser step (GRPO: each with num_generations completions)
    prompts_per_rollout: int | None = None  # GRPO: prompts generated for at once, then split into steps


@dataclass
class Recipe:
    stage: str = ""
    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataArgs = field(default_factory=DataArgs)
    trainer: dict = field(default_factory=dict)
    rewards: RewardArgs | None = None
    batch: BatchArgs | None = None
    path: Path | None = None  # the file it came from (not a YAML key)


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


def _parse_value(text: str):
    return yaml.load(text, Loader=_Loader)


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
        line = None
        for n in range(len(keys), 0, -1):
            if keys[:n] in self.lines:
                line = self.lines[keys[:n]]
                break
        return DataError(self.path, message, line)


# --------------------------------------------------------------------------- dict -> dataclasses


def _optional_inner(tp):
    """``X | None`` -> X (else None)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return None


def _check_type(value, tp) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_check_type(v, inner) for v in value)
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _type_name(tp) -> str:
    return str(tp).replace("typing.", "") if not isinstance(tp, type) else tp.__name__


def _build(cls, data, keys: tuple[str, ...], source: _Source):
    where = ".".join(keys) or "the recipe"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise source.error(keys, f"{where} must be a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.name != "path"]
    unknown = [k for k in data if k not in names]
    if unknown:
        k = unknown[0]
        raise source.error(keys + (str(k),), f"unknown key {'.'.join(keys + (str(k),))!r}; "
                                              f"known keys of {where}: {', '.join(names)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        inner = _optional_inner(tp) or tp
        if dataclasses.is_dataclass(inner) and value is not None:
            kwargs[name] = _build(inner, value, keys + (name,), source)
        elif not _check_type(value, tp):
            raise source.error(keys + (name,), f"{'.'.join(keys + (name,))} must be {_type_name(tp)}, "
                                               f"got {value!r}")
        else:
            kwargs[name] = copy.deepcopy(value)
    return cls(**kwargs)


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
        node[keys[-1]] = _parse_value(text)
        applied[keys] = item
    return applied


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
        raise DataError(path, f"not valid YAML: {getattr(e, 'problem', e)}",
                        mark.line + 1 if mark is not None else None) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise DataError(path, "a recipe must be a mapping with stage, model, data and trainer keys")
    source = _Source(path, text, _apply_overrides(raw, list(overrides)))
    recipe = _build(Recipe, raw, (), source)
    recipe.path = path
    _check_recipe(recipe, source)
    return recipe


def _check_recipe(recipe: Recipe, source: _Source) -> None:
    if recipe.stage not in STAGES:
        raise source.error(("stage",), f"stage must be one of {', '.join(STAGES)}, got {recipe.stage!r}")
    if not recipe.model.name_or_path:
        raise source.error(("model",), "model.name_or_path is required")
    if recipe.model.dtype not in ("float32", "bfloat16", "float16", "auto"):
        raise source.error(("model", "dtype"), f"model.dtype must be float32, bfloat16, float16 or auto, "
                                               f"got {recipe.model.dtype!r}")
    data = recipe.data
    if (data.train is None) == (data.build is None):
        raise source.error(("data",), "give exactly one of data.train (saved pairs) and data.build")
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
            raise source.error(("rewards", "weights"), f"rewards.weights has {len(weights)} values for "
                                                       f"{len(recipe.rewards.names)} rewards")
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
        raise DataError(where, f"batch.prompts_per_step={recipe.batch.prompts_per_step} x {group} completions "
                               f"= {step} is not a multiple of per_device_train_batch_size {per_device} x "
                               f"{num_processes} processes = {micro}")
    plan = {"gradient_accumulation_steps": step // micro}
    if recipe.stage == "grpo":
        rollout = recipe.batch.prompts_per_rollout or recipe.batch.prompts_per_step
        if rollout % recipe.batch.prompts_per_step:
            raise DataError(where, f"batch.prompts_per_rollout={rollout} must be a multiple of "
                                   f"batch.prompts_per_step={recipe.batch.prompts_per_step}")
        plan["generation_batch_size"] = rollout * group
    return plan


def trainer_kwargs(recipe: Recipe, output_dir: str | Path | None = None,
                   num_processes: int | None = None) -> dict[str, Any]:
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


def trainer_config(recipe: Recipe, output_dir: str | Path | None = None, num_processes: int | None = None,
                   **changes):
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


def check_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                 num_processes: tuple[int, ...] = (1,)) -> Recipe:
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
