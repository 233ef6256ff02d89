"""Model soups: the uniform weight average of fine-tuned checkpoints of one model (Wortsman et al., 2022),
and the command `r1track soup`.

The runs must share the architecture and the tracker settings (GRPO seeds from one SFT model are the
intended case). Every floating-point tensor is averaged in float64 and stored in its own dtype, one
safetensors file at a time (sharded checkpoints too, so memory holds one shard per run); other tensors are
the first run's. The other files (config, tokenizer, processor, ``r1track.json``) are the first run's, and
``soup.json`` lists the averaged checkpoints. The soup is written beside ``out`` and renamed into place:
whole or absent.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from r1track.atomic import atomic_dir
from r1track.errors import R1TrackError

INDEX = "model.safetensors.index.json"
SOURCES = "soup.json"  # the averaged checkpoints, written into the soup
# config keys that say where or with what a checkpoint was saved, not what it is
PROVENANCE_KEYS = ("_name_or_path", "transformers_version")


def weight_files(model: Path) -> list[str]:
    """The safetensors files of a checkpoint folder: one file, or the shards its index lists."""
    if (model / INDEX).is_file():
        return sorted(set(json.loads((model / INDEX).read_text())["weight_map"].values()))
    if (model / "model.safetensors").is_file():
        return ["model.safetensors"]
    raise R1TrackError(f"{model}: no model.safetensors or {INDEX} (only safetensors checkpoints make a soup)")


def _identity(model: Path, name: str) -> dict | None:
    path = model / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise R1TrackError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    return {k: v for k, v in data.items() if k not in PROVENANCE_KEYS}


def check_compatible(models: list[Path]) -> list[str]:
    """The weight files all ``models`` share; a clear error where a run differs from the first."""
    if len(models) < 2:
        raise R1TrackError("a soup needs two or more models")
    files = weight_files(models[0])
    for model in models[1:]:
        for name in ("config.json", "r1track.json"):
            if _identity(model, name) != _identity(models[0], name):
                raise R1TrackError(
                    f"{model / name}: differs from {models[0] / name}; a soup averages runs of one model"
                )
        if weight_files(model) != files:
            raise R1TrackError(f"{model}: its weight files differ from {models[0]}'s")
    return files


def mean(tensors: list):
    """The element-wise mean of same-shaped tensors, summed in float64, in the first one's dtype."""
    import torch

    total = torch.zeros(tensors[0].shape, dtype=torch.float64)
    for t in tensors:
        total += t.to(torch.float64)
    return (total / len(tensors)).to(tensors[0].dtype)


def soup(models: list[str | Path], out: str | Path, overwrite: bool = False) -> Path:
    """Write the uniform average of ``models`` (checkpoint folders) to ``out``; returns ``out``."""
    from safetensors.torch import load_file, save_file

    runs, out = [Path(m) for m in models], Path(out)
    if out.exists() and not overwrite:
        raise R1TrackError(f"{out}: already exists; pass --overwrite to replace it")
    files = check_compatible(runs)
    with atomic_dir(out) as staging:
        for f in runs[0].iterdir():
            if f.is_file() and f.suffix in (".json", ".jinja", ".txt", ".model") and f.name not in (*files, SOURCES):
                shutil.copy2(f, staging / f.name)
        for name in files:
            states = [load_file(m / name) for m in runs]
            first = states[0]
            if any(s.keys() != first.keys() or any(s[k].shape != first[k].shape for k in first) for s in states):
                raise R1TrackError(f"{name}: tensor names or shapes differ between the runs")
            averaged = {k: mean([s[k] for s in states]) if v.is_floating_point() else v for k, v in first.items()}
            save_file({k: v.contiguous() for k, v in averaged.items()}, staging / name, metadata={"format": "pt"})
        ingredients = {"models": [str(m.resolve()) for m in runs]}
        (staging / SOURCES).write_text(json.dumps(ingredients, indent=1) + "\n")
    return out


# ---------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", type=Path, help="checkpoint folders of one model (two or more)")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")


def run(args: argparse.Namespace) -> int:
    out = soup(args.models, args.out, overwrite=args.overwrite)
    print(f"soup of {len(args.models)} models -> {out}")
    return 0
