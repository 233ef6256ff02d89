"""Shipped recipes, accelerate and DeepSpeed configs load and validate; bad recipes fail clearly."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")

from r1track.cli import main  # noqa: E402
from r1track.errors import DataError  # noqa: E402
from r1track.training.config import (  # noqa: E402
    batch_plan,
    bf16_capable,
    check_recipe,
    load_recipe,
    trainer_config,
)

ROOT = Path(__file__).parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
ACCELERATE = sorted((ROOT / "configs" / "accelerate").glob("*.yaml"))
DEEPSPEED = sorted((ROOT / "configs" / "deepspeed").glob("*.json"))
GPU_PROCESSES = (1, 2, 4, 8)
CPU_RECIPES = ("tiny-", "nano-")  # one process, fp32: the recipes meant for this project's CPU machines


def _config(recipe, n: int = 1):
    """The recipe's TRL config for n processes on this machine (see check_recipe on use_cpu)."""
    return trainer_config(recipe, "unused", n, **({} if bf16_capable() else {"use_cpu": True}))


def _name(p: Path) -> str:
    return p.name


def test_files_are_shipped():
    names = {p.name for p in RECIPES}
    assert {"r1track-5k-qwen2.5vl-3b.yaml", "r1track-100k-qwen2.5vl-3b.yaml", "sft-lora-qwen2.5vl-3b.yaml",
            "grpo-qwen3vl-4b.yaml", "grpo-lora-qwen2.5vl-7b.yaml", "tiny-cpu-sft.yaml",
            "tiny-cpu-grpo.yaml"} <= names
    assert {p.name for p in DEEPSPEED} == {"zero2.json", "zero3.json"}
    assert len(ACCELERATE) >= 5


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("path", RECIPES, ids=_name)
def test_recipe_builds_its_trl_config(path):
    tiny = path.name.startswith(CPU_RECIPES)
    recipe = check_recipe(path, num_processes=(1,) if tiny else GPU_PROCESSES)
    assert recipe.stage in ("sft", "grpo") and recipe.path == path
    config = _config(recipe)
    assert type(config).__name__ == ("GRPOConfig" if recipe.stage == "grpo" else "SFTConfig")
    # GPU recipes compute in bf16; CPU ones must not ask for it (TrainingArguments refuses it there)
    assert config.bf16 is (not tiny)
    assert recipe.model.trust_remote_code is False


@pytest.mark.parametrize("path", [p for p in RECIPES if load_recipe(p).stage == "grpo"], ids=_name)
def test_grpo_recipes_set_what_trl_defaults_differently(path):
    # TRL's defaults (beta 0, dapo, 8 generations, 512 tokens) are not the reference's: set on purpose
    recipe = load_recipe(path)
    for key in ("beta", "loss_type", "num_generations", "max_completion_length", "temperature", "epsilon",
                "num_iterations", "learning_rate", "scale_rewards", "use_bias_correction_kl"):
        assert key in recipe.trainer, key
    config = _config(recipe)
    assert config.beta > 0 and config.loss_type == "bnpo" and config.scale_rewards == "group"
    assert config.use_bias_correction_kl is False


@pytest.mark.parametrize("name, group, rollout, epochs", [
    ("r1track-5k-qwen2.5vl-3b.yaml", 5, 512, 25),
    ("r1track-100k-qwen2.5vl-3b.yaml", 6, 768, 8),
])
def test_reference_grpo_recipes_map_the_easyr1_numbers(name, group, rollout, epochs):
    recipe = load_recipe(ROOT / "recipes" / name)
    for n in GPU_PROCESSES:
        config = _config(recipe, n)
        optimiser_batch = config.per_device_train_batch_size * n * config.gradient_accumulation_steps
        assert optimiser_batch == 128 * group  # 128 prompts per optimiser step, all their completions
        assert config.generation_batch_size == rollout * group
        assert config.generation_batch_size // optimiser_batch == rollout // 128  # steps per rollout
    config = _config(recipe)
    assert (config.num_generations, config.max_completion_length, config.num_train_epochs) == (group, 64, epochs)
    assert (config.beta, config.temperature, config.epsilon, config.num_iterations) == (0.01, 1.0, 0.2, 1)
    assert (config.learning_rate, config.weight_decay, config.max_grad_norm, config.warmup_steps) == (
        1e-6, 0.01, 1.0, 0.1)
    assert config.lr_scheduler_type.value == "constant_with_warmup"
    assert recipe.model.freeze_vision is False and recipe.model.lora is None
    from r1track.training.rewards import get_rewards, r1track_reward

    assert get_rewards(recipe.rewards.names) == [r1track_reward]


def test_sft_recipe_is_the_reference_baseline():
    recipe = load_recipe(ROOT / "recipes" / "sft-lora-qwen2.5vl-3b.yaml")
    lora = recipe.model.lora
    assert (lora.rank, lora.target_modules, recipe.model.freeze_vision, recipe.model.merge_lora) == (
        12, "all-linear", False, True)
    for n in (1, 2, 4, 8):
        config = _config(recipe, n)
        assert config.per_device_train_batch_size * n * config.gradient_accumulation_steps == 16
    assert (config.learning_rate, config.num_train_epochs, config.warmup_steps) == (1e-5, 2, 0.1)
    assert config.lr_scheduler_type.value == "cosine" and config.completion_only_loss is True
    assert config.max_length is None  # image tokens are never truncated


def test_qwen3_recipe_targets_the_qwen3_family():
    recipe = load_recipe(ROOT / "recipes" / "grpo-qwen3vl-4b.yaml")
    assert recipe.model.family == "qwen3-vl" and "Qwen3-VL" in recipe.model.name_or_path


def test_lora_grpo_recipe_never_targets_the_output_head():
    recipe = load_recipe(ROOT / "recipes" / "grpo-lora-qwen2.5vl-7b.yaml")
    assert recipe.model.lora is not None and recipe.model.merge_lora
    assert recipe.model.lora.target_modules == "all-linear"  # peft leaves lm_head out of all-linear


# --------------------------------------------------------------------------- bad recipes


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


GOOD = """\
stage: grpo
model:
  name_or_path: some/model
data:
  train: pairs
rewards:
  names: [r1track]
trainer:
  output_dir: out
  num_generations: 2
  per_device_train_batch_size: 2
  learning_rate: 1e-6
  bf16: false
"""


def test_minimal_recipe_loads_and_yaml_floats_without_a_dot_are_floats(tmp_path):
    recipe = load_recipe(_write(tmp_path, GOOD))
    assert recipe.trainer["learning_rate"] == 1e-6 and isinstance(recipe.trainer["learning_rate"], float)
    assert recipe.model.dtype == "bfloat16" and recipe.model.lora is None


@pytest.mark.parametrize("edit, key, line", [
    (("  name_or_path: some/model\n", "  name_or_path: some/model\n  colour: red\n"), "model.colour", 4),
    (("  learning_rate: 1e-6\n", "  learnin_rate: 1e-6\n"), "trainer.learnin_rate", 12),
    (("stage: grpo\n", "stage: grpo\nmodle: {}\n"), "modle", 2),
    (("  train: pairs\n", "  train: pairs\n  build:\n    dataset: got10k\n    sampels: 3\n"), "data.build.sampels", 8),
])
def test_unknown_keys_name_the_file_line_and_key(tmp_path, edit, key, line):
    path = _write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(DataError) as err:
        load_recipe(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: ") and repr(key) in message


def test_wrong_value_types_are_reported_with_their_key(tmp_path):
    path = _write(tmp_path, GOOD.replace("data:\n", "data:\n  validation:\n    sequences: many\n"))
    with pytest.raises(DataError, match=r"recipe.yaml:\d+: data.validation.sequences: input should be a valid integer, got .many."):
        load_recipe(path)


def test_trl_rejections_become_errors_naming_the_recipe(tmp_path):
    path = _write(tmp_path, GOOD.replace("num_generations: 2", "num_generations: 1"))
    with pytest.raises(DataError, match="recipe.yaml: trl.GRPOConfig rejects .*at least 2 generations"):
        check_recipe(path)


def test_overrides_apply_and_unknown_ones_are_named(tmp_path):
    path = _write(tmp_path, GOOD)
    recipe = load_recipe(path, ["trainer.learning_rate=3e-6", "model.lora={rank: 8}", "rewards.names=[iou, format]"])
    assert recipe.trainer["learning_rate"] == 3e-6
    assert recipe.model.lora.rank == 8 and recipe.model.lora.target_modules == "all-linear"
    assert recipe.rewards.names == ["iou", "format"]
    with pytest.raises(DataError, match=r"override 'model.colour=red': unknown key 'model.colour'"):
        load_recipe(path, ["model.colour=red"])


@pytest.mark.parametrize("edit, message", [
    (("stage: grpo", "stage: ppo"), "stage must be one of sft, grpo"),
    (("  names: [r1track]", "  names: [r1track, wishful]"), "unknown reward 'wishful'"),
    (("  names: [r1track]", "  names: [r1track]\n  weights: [1.0, 2.0]"), "2 values for 1 rewards"),
    (("  train: pairs\n", "  train: pairs\n  build: {dataset: got10k, root: x}\n"), "exactly one of data.train"),
    (("  train: pairs\n", "  train: []\n"), "data.train is an empty list"),
    (("trainer:\n", "batch:\n  prompts_per_step: 4\ntrainer:\n  gradient_accumulation_steps: 2\n"),
     "derived from batch"),
])
def test_inconsistent_recipes_are_refused(tmp_path, edit, message):
    with pytest.raises(DataError, match=re.escape(message)):
        load_recipe(_write(tmp_path, GOOD.replace(*edit)))


def test_batch_plan_refuses_batches_that_do_not_divide(tmp_path):
    recipe = load_recipe(_write(tmp_path, GOOD.replace("trainer:\n", "batch:\n  prompts_per_step: 3\ntrainer:\n")))
    assert batch_plan(recipe, 1) == {"gradient_accumulation_steps": 3, "generation_batch_size": 6}
    with pytest.raises(DataError, match="not a multiple of per_device_train_batch_size 2 x 4 processes"):
        batch_plan(recipe, 4)


def test_missing_recipe_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_train_command_checks_recipes_and_refuses_the_wrong_stage(tmp_path, capsys):
    recipe = str(ROOT / "recipes" / "r1track-100k-qwen2.5vl-3b.yaml")
    assert main(["train", "grpo", "--config", recipe, "--check", "--num-processes", "8"]) == 0
    assert "gradient_accumulation_steps=24, generation_batch_size=4608" in capsys.readouterr().out
    assert main(["train", "sft", "--config", recipe, "--check"]) == 2
    assert "is a grpo recipe" in capsys.readouterr().err
    bad = _write(tmp_path, GOOD.replace("  learning_rate: 1e-6\n", "  learnin_rate: 1e-6\n"))
    assert main(["train", "grpo", "--config", str(bad), "--check", "trainer.seed=1"]) == 2
    assert f"{bad}:12: unknown key 'trainer.learnin_rate'" in capsys.readouterr().err


# --------------------------------------------------------------------------- accelerate configs


def _launch_dests() -> set[str]:
    from accelerate.commands.launch import launch_command_parser

    return {action.dest for action in launch_command_parser()._actions}


def _ds_file_conflicts() -> set[str]:
    """Settings accelerate refuses beside a deepspeed_config_file (read from DeepSpeedPlugin's check)."""
    from accelerate.utils.dataclasses import DeepSpeedPlugin

    source = inspect.getsource(DeepSpeedPlugin._deepspeed_config_checks)
    listed = source[source.index("env_variable_names_to_ignore = ["):]
    listed = listed[: listed.index("]")]
    names = {n.replace("ACCELERATE_", "").replace("DEEPSPEED_", "").lower()
             for n in re.findall(r'"(ACCELERATE_[A-Z0-9_]+)"', listed)}
    assert {"mixed_precision", "zero_stage", "gradient_accumulation_steps"} <= names
    return names


@pytest.mark.parametrize("path", ACCELERATE, ids=_name)
def test_accelerate_config_matches_accelerates_schema(path):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DistributedType

    config = ClusterConfig.from_yaml_file(str(path))  # unknown top-level keys raise here
    raw = yaml.safe_load(path.read_text())
    dests = _launch_dests()
    for key in config.deepspeed_config:  # nested keys become `accelerate launch` options
        assert key in dests, f"{path.name}: deepspeed_config.{key} is not an accelerate launch option"
    assert config.num_processes >= 1 and config.num_processes % config.num_machines == 0
    if config.distributed_type == DistributedType.DEEPSPEED:
        ds_file = config.deepspeed_config.get("deepspeed_config_file")
        assert ds_file and (ROOT / ds_file).is_file(), ds_file
        assert not (_ds_file_conflicts() & set(config.deepspeed_config)) and "mixed_precision" not in raw
        stage = json.loads((ROOT / ds_file).read_text())["zero_optimization"]["stage"]
        assert config.deepspeed_config.get("zero3_init_flag", False) is (stage == 3)
    else:
        assert raw["mixed_precision"] == "bf16"
    if config.num_machines > 1:
        assert config.main_process_ip and config.main_process_port and config.rdzv_backend == "static"
        assert config.machine_rank == 0  # each machine passes its own --machine_rank


def test_there_is_one_config_per_launch_kind():
    from accelerate.commands.config.config_args import ClusterConfig

    kinds = set()
    for path in ACCELERATE:
        c = ClusterConfig.from_yaml_file(str(path))
        stage = None
        if c.deepspeed_config:
            stage = json.loads((ROOT / c.deepspeed_config["deepspeed_config_file"]).read_text())[
                "zero_optimization"]["stage"]
        kinds.add((c.distributed_type.value, c.num_machines > 1, stage, c.num_processes == 1))
    assert ("NO", False, None, True) in kinds  # single GPU
    assert ("MULTI_GPU", False, None, False) in kinds  # DDP
    assert ("DEEPSPEED", False, 2, False) in kinds and ("DEEPSPEED", False, 3, False) in kinds
    assert any(multi for _, multi, _, _ in kinds)  # multi-node


# --------------------------------------------------------------------------- DeepSpeed configs


def _hf_auto_keys() -> set[str]:
    """Keys transformers' DeepSpeed integration fills when they are "auto" (read from its source)."""
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    source = inspect.getsource(HfTrainerDeepSpeedConfig)
    keys = set(re.findall(r'fill_(?:match|only)\(\s*"([^"]+)"', source))
    keys |= set(re.findall(r'"(zero_optimization\.[a-z0-9_]+)"', source))
    return keys


def _leaves(node, prefix=""):
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, path + ".")
        else:
            yield path, value


@pytest.mark.parametrize("path", DEEPSPEED, ids=_name)
def test_deepspeed_config_uses_only_autos_the_trainer_fills(path):
    config = json.loads(path.read_text())
    stage = config["zero_optimization"]["stage"]
    assert path.stem == f"zero{stage}"
    # batch sizes, clipping and precision come from the recipe's trainer settings, never twice
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size",
                "gradient_clipping", "bf16.enabled"):
        assert dict(_leaves(config))[key] == "auto", key
    autos = {k for k, v in _leaves(config) if v == "auto"}
    assert autos <= _hf_auto_keys(), autos - _hf_auto_keys()
    if stage == 3:
        # the final save gathers the full weights (the tracker loads them by path)
        assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


@pytest.mark.parametrize("path", DEEPSPEED, ids=_name)
def test_deepspeed_config_fills_from_a_recipe(path):
    pytest.importorskip("deepspeed")
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    recipe = load_recipe(ROOT / "recipes" / "r1track-100k-qwen2.5vl-3b.yaml")
    ds = HfTrainerDeepSpeedConfig(str(path))
    ds.trainer_config_process(_config(recipe, 1))
    assert not ds.mismatches
    assert ds.config["train_micro_batch_size_per_gpu"] == 4 and ds.config["gradient_clipping"] == 1.0
