"""End to end on CPU: synthetic benchmark -> pairs -> SFT (LoRA) -> GRPO -> the saved model tracks.

Runs the shipped tiny recipes through the ``r1track train`` command on a random-weight checkpoint of the
real Qwen2.5-VL architecture. With random weights every answer fails the reference reward (-1 for the
whole group, advantage 0, no update), so the GRPO run also gets a test-only reward that varies inside a
group (a hash of the answer text): what is tested is that the update step runs and moves the weights,
not that the reward is good.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from safetensors.numpy import load_file  # noqa: E402

from r1track.cli import main  # noqa: E402

pytestmark = pytest.mark.slow

RECIPES = Path(__file__).parents[1] / "recipes"


def text_hash_reward(completions, **kwargs) -> list[float]:
    """Test-only: a deterministic reward that differs between different answers of a group."""
    from r1track.training.rewards import completion_text

    return [zlib.crc32(completion_text(c).encode()) % 1000 / 1000 for c in completions]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_dir):
    from r1track.synth import generate

    root = tmp_path_factory.mktemp("e2e")
    generate(root / "synth", sequences=3, frames=10, seed=0, split="train", size="320x240", progress=False)
    generate(root / "synth", sequences=1, frames=6, seed=0, split="val", size="320x240", progress=False)
    return {"root": root, "model": tiny_dir, "synth": root / "synth"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CI", "1")  # TRL sends no usage ping from CI runs


def _paths(inputs, model) -> list[str]:
    return [f"model.name_or_path={model}", f"data.build.root={inputs['synth']}",
            f"data.validation.root={inputs['synth']}"]


def _log(run: Path) -> list[dict]:
    return json.loads((run / "log_history.json").read_text())


def _vision(key: str) -> bool:
    return key.startswith("visual.") or ".visual." in key


def _changed(a: dict, b: dict) -> set[str]:
    assert a.keys() == b.keys()
    return {k for k in a if not np.array_equal(a[k], b[k])}


def test_sft_grpo_and_tracking(inputs, monkeypatch):
    import r1track
    from r1track.datasets import load
    from r1track.nano import NanoSettings, read_settings, write_settings
    from r1track.training import rewards

    root = inputs["root"]
    base = load_file(str(inputs["model"] / "model.safetensors"))

    # ---- SFT: LoRA adapter, merged into the saved model
    sft_run = root / "runs" / "sft"
    assert main(["train", "sft", "--config", str(RECIPES / "tiny-cpu-sft.yaml"), "--output-dir", str(sft_run),
                 *_paths(inputs, inputs["model"])]) == 0
    sft_model = sft_run / "model"
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json"} <= {
        p.name for p in sft_model.iterdir()}
    assert not list(sft_model.glob("adapter_*")) and not list(sft_model.glob("*.bin"))
    sft_weights = load_file(str(sft_model / "model.safetensors"))
    changed = _changed(base, sft_weights)
    # the merged LoRA moved linear layers of the language model and of the vision tower, nothing else
    assert any(".layers." in k and not _vision(k) and k.endswith("proj.weight") for k in changed)
    assert any(_vision(k) for k in changed)
    assert not any("embed_tokens" in k or "norm" in k for k in changed)
    log = _log(sft_run)
    losses = [h["loss"] for h in log if "loss" in h]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert any("val/ao" in h and 0 <= h["val/ao"] <= 1 for h in log)
    assert (sft_run / "recipe.yaml").is_file()

    # a finished run is never overwritten unless asked
    assert main(["train", "sft", "--config", str(RECIPES / "tiny-cpu-sft.yaml"), "--output-dir", str(sft_run),
                 *_paths(inputs, inputs["model"])]) == 2

    # ---- GRPO from the SFT model: full fine-tuning, KL to the SFT model, the reference reward logged
    monkeypatch.setitem(rewards.REWARDS, "text_hash", text_hash_reward)
    write_settings(sft_model, NanoSettings(crop_size=112))  # tracker settings travel with the policy
    grpo_run = root / "runs" / "grpo"
    assert main(["train", "grpo", "--config", str(RECIPES / "tiny-cpu-grpo.yaml"), "--output-dir", str(grpo_run),
                 *_paths(inputs, sft_model), "rewards.names=[r1track, text_hash]", "trainer.save_strategy=steps",
                 "trainer.save_steps=1", "trainer.save_only_model=true"]) == 0
    grpo_weights = load_file(str(grpo_run / "model" / "model.safetensors"))
    assert read_settings(grpo_run / "model")["crop_size"] == 112
    # every checkpoint tracks like the final model (early stopping picks among them)
    assert read_settings(grpo_run / "checkpoint-1")["crop_size"] == 112
    assert r1track.load_tracker(str(grpo_run / "checkpoint-1"), max_new_tokens=16, device="cpu").crop_size == 112
    assert _changed(load_file(str(grpo_run / "checkpoint-1" / "model.safetensors")), grpo_weights)
    changed = _changed(sft_weights, grpo_weights)
    assert any(".layers." in k and not _vision(k) for k in changed)
    assert any(_vision(k) for k in changed)  # the vision tower trains (reference: not frozen)
    log = _log(grpo_run)
    steps = [h for h in log if "rewards/r1track_reward/mean" in h]
    assert len(steps) == 2
    for h in steps:
        assert h["rewards/r1track_reward/mean"] == -1.0  # random weights never answer a box
        assert h["rewards/text_hash_reward/std"] > 0  # the group advantage is not zero
        assert "kl" in h and np.isfinite(h["loss"])
    assert any(h.get("kl", 0) > 0 for h in steps)  # the policy moved away from the reference
    assert any("val/ao" in h for h in log)
    card = (grpo_run / "model" / "README.md").read_text()  # the Hub model card, with the last val/ao
    assert card.startswith("---\n") and "library_name: transformers" in card and "type: ao" in card

    # ---- the saved GRPO model tracks by path with the transformers backend (its r1track.json: 112-px crops)
    tracker = r1track.load_tracker(str(grpo_run / "model"), max_new_tokens=16, device="cpu")
    assert tracker.crop_size == 112
    seq = load("got10k", inputs["synth"], "val")[0]
    tracker.init(seq.frame(0), seq.gt[0])
    h, w = seq.frame(0).shape[:2]
    for i in (1, 2):
        box = tracker.update(seq.frame(i))
        assert box.shape == (4,) and np.isfinite(box).all()
        assert box[2] > 0 and box[3] > 0
        assert box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= w and box[1] + box[3] <= h


def test_freeze_vision_freezes_the_tower_with_and_without_lora(inputs):
    from peft import get_peft_model

    from r1track.training.config import LoraArgs, ModelArgs
    from r1track.training.stage import load_policy, lora_config

    margs = ModelArgs(name_or_path=str(inputs["model"]), dtype="float32", freeze_vision=True)
    model, processor, family = load_policy(margs)
    assert family == "qwen2.5-vl" and processor.tokenizer.padding_side == "left"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(".visual." in n for n in trainable)
    assert all(p.requires_grad for n, p in model.named_parameters() if ".visual." not in n)

    margs.lora = LoraArgs(rank=4, alpha=8)
    peft_model = get_peft_model(load_policy(margs)[0], lora_config(margs))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any(".visual." in n for n in trainable)
    assert any("language_model" in n for n in trainable)


def test_kl_reference_is_the_named_checkpoint_not_the_start(inputs, tmp_path):
    import torch

    from r1track.errors import R1TrackError
    from r1track.tiny import make_tiny_model
    from r1track.training.config import load_recipe
    from r1track.training.grpo import build_trainer

    other = make_tiny_model(tmp_path / "other", seed=7, cache_dir=inputs["model"].parent / "tokenizer-cache")
    paths = [*_paths(inputs, inputs["model"]), "model.lora=null"]
    recipe = load_recipe(RECIPES / "tiny-cpu-grpo.yaml", [*paths, f"model.kl_reference={other}"])
    trainer = build_trainer(recipe, tmp_path / "run")[0]
    reference = load_file(str(other / "model.safetensors"))
    policy = load_file(str(Path(inputs["model"]) / "model.safetensors"))
    key = next(k for k in reference if k.endswith("embed_tokens.weight"))
    ref_weights = {n: p.detach() for n, p in trainer.ref_model.named_parameters()}
    ref_key = next(n for n in ref_weights if n.endswith("embed_tokens.weight"))
    assert torch.equal(ref_weights[ref_key], torch.from_numpy(reference[key]))
    assert not np.array_equal(reference[key], policy[key])
    assert trainer.model.config._name_or_path == str(inputs["model"])  # restored after construction
    default = build_trainer(load_recipe(RECIPES / "tiny-cpu-grpo.yaml", paths), tmp_path / "run2")[0]
    default_ref = dict(default.ref_model.named_parameters())[ref_key].detach()
    assert torch.equal(default_ref, torch.from_numpy(policy[key]))  # without it: the starting model

    with pytest.raises(R1TrackError, match="kl_reference has no effect with trainer.beta 0"):
        build_trainer(load_recipe(RECIPES / "tiny-cpu-grpo.yaml",
                                  [*paths, f"model.kl_reference={other}", "trainer.beta=0"]), tmp_path / "run3")
    with pytest.raises(R1TrackError, match="cannot load model.kl_reference"):
        build_trainer(load_recipe(RECIPES / "tiny-cpu-grpo.yaml",
                                  [*paths, f"model.kl_reference={tmp_path / 'missing'}"]), tmp_path / "run4")
    with pytest.raises(R1TrackError, match=r"tiny-cpu-sft.yaml.*model.kl_reference is for GRPO"):
        load_recipe(RECIPES / "tiny-cpu-sft.yaml", [*_paths(inputs, inputs["model"]), f"model.kl_reference={other}"])


def test_pairs_of_another_family_are_refused(inputs):
    from r1track.errors import R1TrackError
    from r1track.training.config import load_recipe
    from r1track.training.stage import train_pairs

    recipe = load_recipe(RECIPES / "tiny-cpu-grpo.yaml",
                         [*_paths(inputs, inputs["model"]), "data.build.options.family=qwen3-vl"])
    with pytest.raises(R1TrackError, match="written for the qwen3-vl family but the model is qwen2.5-vl"):
        train_pairs(recipe, "qwen2.5-vl")
    assert len(train_pairs(recipe, "qwen3-vl")) == 2  # the same recipe for a Qwen3-VL policy builds


def test_data_train_may_name_several_pair_datasets(inputs, tmp_path):
    """Every closed-loop round's pairs in one pool (DAgger): ``data.train`` as a list, concatenated in order;
    the family check covers every part."""
    from r1track.datasets import load
    from r1track.errors import R1TrackError
    from r1track.training.config import load_recipe
    from r1track.training.pairs import PairOptions, load_pairs, write_pairs
    from r1track.training.stage import train_pairs

    seqs = load("got10k", inputs["synth"], "train")
    write_pairs(seqs, tmp_path / "r1", 3, 1, PairOptions(sizes=(112,)), progress=False)
    write_pairs(seqs, tmp_path / "r2", 2, 2, PairOptions(sizes=(112,)), progress=False)
    write_pairs(seqs, tmp_path / "qwen3", 2, 3, PairOptions(sizes=(112,), family="qwen3-vl"), progress=False)
    paths = [f"model.name_or_path={inputs['model']}", f"data.validation.root={inputs['synth']}", "data.build=null"]
    recipe = load_recipe(RECIPES / "tiny-cpu-grpo.yaml", [*paths, f"data.train=[{tmp_path / 'r1'}, {tmp_path / 'r2'}]"])
    pool = train_pairs(recipe, "qwen2.5-vl")
    parts = [load_pairs(tmp_path / name) for name in ("r1", "r2")]
    assert len(pool) == 5 and list(pool["frame_boxes"]) == [*parts[0]["frame_boxes"], *parts[1]["frame_boxes"]]
    mixed = load_recipe(RECIPES / "tiny-cpu-grpo.yaml", [*paths, f"data.train=[{tmp_path / 'r1'}, {tmp_path / 'qwen3'}]"])
    with pytest.raises(R1TrackError, match=f"{tmp_path / 'r1'}, {tmp_path / 'qwen3'}: pairs were written for the "
                                           "qwen2.5-vl, qwen3-vl family"):
        train_pairs(mixed, "qwen2.5-vl")
