"""`r1track soup`: the uniform weight average of checkpoints of one model, written whole, refusing runs of
another model and an existing folder."""

from __future__ import annotations

import json

import pytest

from r1track.cli import main

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")


@pytest.fixture(scope="module")
def runs(tiny_dir, tmp_path_factory):
    """The session's tiny checkpoint and two more of the same architecture with other weights."""
    from r1track.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("runs")
    cache = tmp_path_factory.getbasetemp() / "tokenizer-cache"
    return [tiny_dir, *(make_tiny_model(root / f"seed{s}", seed=s, cache_dir=cache) for s in (1, 2))]


def test_every_float_tensor_is_the_mean_of_the_runs_and_the_soup_loads_as_a_model(runs, tmp_path, capsys):
    from transformers import AutoModelForImageTextToText

    out = tmp_path / "soup"
    assert main(["soup", *map(str, runs), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    states = [safetensors_torch.load_file(r / "model.safetensors") for r in runs]
    averaged = safetensors_torch.load_file(out / "model.safetensors")
    assert averaged.keys() == states[0].keys()
    differ = 0
    for key, value in averaged.items():
        assert value.dtype == states[0][key].dtype
        expected = sum(s[key].double() for s in states) / 3
        torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7)
        differ += not torch.equal(states[0][key], states[1][key])
    assert differ > 0  # the runs' weights differ, so the average is not a copy
    assert json.loads((out / "config.json").read_text()) == json.loads((runs[0] / "config.json").read_text())
    assert {f.name for f in runs[0].iterdir()} | {"soup.json"} == {f.name for f in out.iterdir()}  # tokenizer, ...
    assert json.loads((out / "soup.json").read_text()) == {"models": [str(r.resolve()) for r in runs]}
    # loaded as transformers loads any checkpoint, every parameter is the mean of the runs' loaded ones
    soup_model, *models = (AutoModelForImageTextToText.from_pretrained(d) for d in (out, *runs))
    for name, value in soup_model.state_dict().items():
        expected = sum(m.state_dict()[name].double() for m in models) / 3
        torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-7)


def test_a_soup_of_one_run_with_itself_is_that_run(runs, tmp_path):
    out = tmp_path / "same"
    assert main(["soup", str(runs[0]), str(runs[0]), "--out", str(out)]) == 0
    a, b = (safetensors_torch.load_file(d / "model.safetensors") for d in (runs[0], out))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_runs_of_another_model_are_refused_in_one_line(runs, tmp_path, tmp_path_factory, capsys):
    from r1track.tiny import make_tiny_model

    wider = make_tiny_model(
        tmp_path / "wider", hidden_size=96, cache_dir=tmp_path_factory.getbasetemp() / "tokenizer-cache"
    )
    out = tmp_path / "soup"
    capsys.readouterr()  # the new checkpoint's progress bars
    assert main(["soup", str(runs[0]), str(wider), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(wider / "config.json") in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".soup-*"))  # nothing half-written


def test_an_existing_folder_is_kept_unless_overwrite_is_asked(runs, tmp_path, capsys):
    out = tmp_path / "soup"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["soup", str(runs[0]), str(runs[1]), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    assert main(["soup", str(runs[0]), str(runs[1]), "--out", str(out), "--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()
