"""`r1track eval` with an MLLM tracker on a tiny real-architecture checkpoint through the transformers
backend, on the CPU: lockstep batching gives exactly the boxes of one-by-one tracking (greedy)."""

from __future__ import annotations

import numpy as np
import pytest

from r1track import datasets, results
from r1track.cli import main


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from r1track.synth import generate

    root = tmp_path_factory.mktemp("synth")
    generate(root, sequences=3, frames=5, seed=3, split="val", size="200x150", progress=False)
    return root


def test_eval_batched_equals_one_by_one(synth_root, tiny_dir, tmp_path, capsys):
    common = ["eval", "--dataset", "got10k", "--root", str(synth_root), "--split", "val", "--tracker", "mllm",
              "--model", str(tiny_dir), "--backend", "transformers", "--device", "cpu", "--max-new-tokens", "8",
              "--results", str(tmp_path), "--no-progress"]
    assert main(common + ["--name", "one", "--batch-size", "1"]) == 0
    assert main(common + ["--name", "batched", "--batch-size", "3"]) == 0
    assert "AO" in capsys.readouterr().out  # the score table is printed
    for seq in datasets.load("got10k", synth_root, "val"):
        one, t_one = results.read_got10k(tmp_path / "one", seq.name, len(seq))
        batched, _ = results.read_got10k(tmp_path / "batched", seq.name, len(seq))
        assert len(one) == len(batched) == 1  # greedy decoding: one run
        np.testing.assert_array_equal(one[0], batched[0])
        np.testing.assert_array_equal(one[0][0], np.round(seq.gt[0], 3))  # frame 0 is the given box
        w, h = seq.meta["resolution"]
        b = one[0]
        assert (b[:, 2] > 0).all() and (b[:, 0] >= 0).all() and (b[:, 0] + b[:, 2] <= w + 1e-3).all()
        assert (b[:, 1] >= 0).all() and (b[:, 1] + b[:, 3] <= h + 1e-3).all()
        assert (t_one > 0).all()


def test_training_validation_scores_what_eval_and_report_score(synth_root, tiny_dir, tmp_path):
    """The val/ao callback runs the evaluation runner's lockstep loop: same boxes, same AO as eval + report."""
    import json

    from transformers import AutoModelForImageTextToText, AutoProcessor

    from r1track.training.callbacks import TrackingValidationCallback

    assert main(["eval", "--dataset", "got10k", "--root", str(synth_root), "--split", "val", "--tracker", "mllm",
                 "--model", str(tiny_dir), "--device", "cpu", "--max-new-tokens", "8", "--batch-size", "3",
                 "--results", str(tmp_path), "--name", "tiny", "--no-progress"]) == 0
    assert main(["report", "--dataset", "got10k", "--root", str(synth_root), "--split", "val",
                 "--results", str(tmp_path), "--json", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())["tiny"]["overall"]

    model = AutoModelForImageTextToText.from_pretrained(tiny_dir).train()
    callback = TrackingValidationCallback(datasets.load("got10k", synth_root, "val"), every_n_steps=1,
                                          processor=AutoProcessor.from_pretrained(tiny_dir), max_new_tokens=8)
    val = callback.evaluate(model)
    assert model.training  # train mode restored
    assert val["frames"] == 3 * 4 and 0 <= val["parse_failures"] <= 1
    # result files hold 3 decimals: the AO from them differs from the in-memory boxes' by rounding only
    assert abs(val["ao"] - scores["ao"]) < 1e-4 and abs(val["sr50"] - scores["sr50"]) < 1e-9


def test_training_validation_tracks_with_the_checkpoints_own_settings(synth_root, tmp_path):
    """A checkpoint's ``r1track.json`` (factors, prompt) is how it is run, so the val/ao callback of a recipe
    tracks with it too (the recipe's ``data.validation.tracker`` on top): the AO `r1track eval` gives it."""
    import json
    import shutil
    from pathlib import Path

    from transformers import AutoModelForImageTextToText, AutoProcessor

    from r1track.nano import NanoSettings, default_model_path, write_settings
    from r1track.training import stage
    from r1track.training.config import load_recipe

    model_dir = shutil.copytree(default_model_path(), tmp_path / "model")  # the packaged nano model: answers parse
    write_settings(model_dir, NanoSettings(template_factor=3.0, search_factor=3.0))
    assert main(["eval", "--dataset", "got10k", "--root", str(synth_root), "--split", "val", "--tracker", "mllm",
                 "--model", str(model_dir), "--device", "cpu", "--max-new-tokens", "24", "--batch-size", "3",
                 "--results", str(tmp_path / "results"), "--name", "tiny", "--no-progress"]) == 0
    assert main(["report", "--dataset", "got10k", "--root", str(synth_root), "--split", "val",
                 "--results", str(tmp_path / "results"), "--json", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())["tiny"]["overall"]

    recipe_file = Path(__file__).resolve().parents[1] / "recipes" / "nano-sft-real.yaml"
    overrides = [f"model.name_or_path={model_dir}", f"data.validation.root={synth_root}",
                 "data.validation.max_new_tokens=24"]
    callback = stage.validation_callback(load_recipe(recipe_file, overrides), AutoProcessor.from_pretrained(model_dir),
                                         family="qwen2.5-vl")
    assert callback.tracker_options["search_factor"] == callback.tracker_options["template_factor"] == 3.0
    val = callback.evaluate(AutoModelForImageTextToText.from_pretrained(model_dir))
    assert abs(val["ao"] - scores["ao"]) < 1e-4 and val["frames"] == 3 * 4 and val["parse_failures"] < 0.5
    # the prompt comes along too, and the recipe's own tracker options still win over the checkpoint's
    write_settings(model_dir, NanoSettings(prompt="compact", search_factor=3.0))
    overrides.append("data.validation.tracker.search_factor=5.0")
    callback = stage.validation_callback(load_recipe(recipe_file, overrides), None, family="qwen2.5-vl")
    assert callback.tracker_options["search_factor"] == 5.0 and callback.tracker_options["prompt"] == "compact"
