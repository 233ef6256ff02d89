"""The model card `r1track train` writes beside the policy: Hub YAML metadata and the recipe, offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")

from r1track.training.card import write_model_card  # noqa: E402
from r1track.training.config import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _card(path: Path) -> tuple[dict, str]:
    text = path.read_text()
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def test_card_carries_hub_metadata_validation_scores_and_the_recipe(tmp_path):
    recipe = load_recipe(ROOT / "recipes" / "r1track-100k-qwen2.5vl-3b.yaml", ["trainer.learning_rate=2e-6"])
    log = [{"loss": 1.0, "step": 1}, {"val/ao": 0.41, "val/sr50": 0.45, "step": 100},
           {"val/ao": 0.52, "val/sr50": 0.6, "val/parse_failures": 0.0, "step": 200}]
    meta, body = _card(write_model_card(tmp_path, recipe, log, family="qwen2.5-vl"))
    assert meta["base_model"] == "Qwen/Qwen2.5-VL-3B-Instruct" and meta["library_name"] == "transformers"
    assert {"r1track", "visual-tracking", "grpo", "qwen2.5-vl"} <= set(meta["tags"])
    assert meta["datasets"] == ["got10k"]
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    assert [(m["type"], m["value"]) for m in metrics] == [("ao", 0.52), ("sr50", 0.6)]  # the last validation
    assert "step 200: AO 0.520, SR0.5 0.600" in body and "r1track.load_tracker" in body
    recipe_yaml = body.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(recipe_yaml)["trainer"]["learning_rate"] == 2e-6  # the effective recipe


def test_card_of_a_local_start_without_validation(tmp_path):
    start = tmp_path / "start"
    start.mkdir()
    recipe = load_recipe(ROOT / "recipes" / "tiny-cpu-sft.yaml", [f"model.name_or_path={start}", "data.validation=null"])
    meta, body = _card(write_model_card(tmp_path, recipe, [{"loss": 1.0}]))
    assert "base_model" not in meta and "model-index" not in meta  # no Hub id, no scores to index
    assert "no validation run was logged" in body


def test_hub_options_pass_through_to_trl(tmp_path):
    from r1track.training.config import trainer_config

    recipe = load_recipe(ROOT / "recipes" / "tiny-cpu-grpo.yaml",
                         ["trainer.push_to_hub=true", "trainer.hub_model_id=me/tracker", "trainer.hub_private_repo=true"])
    config = trainer_config(recipe, output_dir=tmp_path)
    assert config.push_to_hub and config.hub_model_id == "me/tracker" and config.hub_private_repo
