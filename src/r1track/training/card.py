"""The model card saved beside a trained policy: ``README.md`` with the Hugging Face Hub's YAML metadata
(base model, library, tags, datasets, the validation AO / SR as a ``model-index``) and the recipe."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from r1track.atomic import atomic_write_text


def last_validation(log_history: list[dict], prefix: str = "val") -> dict | None:
    """The last ``val/*`` entry of a trainer's log history (step included), or None."""
    entries = [h for h in log_history if f"{prefix}/ao" in h]
    return entries[-1] if entries else None


def card_metadata(recipe, family: str | None, validation: dict | None) -> dict:
    """The Hub metadata block: what the Hub indexes (base model, library, tags, datasets, scores)."""
    base = recipe.model.name_or_path
    sources = [s for s in (recipe.data.build, recipe.data.validation) if s is not None and s.dataset]
    meta: dict = {
        "library_name": "transformers",
        "pipeline_tag": "image-text-to-text",
        "tags": [
            "r1track",
            "visual-tracking",
            "single-object-tracking",
            "trl",
            recipe.stage,
            *([family] if family else []),
        ],
    }
    if not os.path.exists(base):  # a hub id; a local start checkpoint has no Hub name to link
        meta["base_model"] = base
    if sources:
        meta["datasets"] = sorted({s.dataset for s in sources})
    if validation is not None and recipe.data.validation is not None:
        v = recipe.data.validation
        meta["model-index"] = [
            {
                "name": "r1track",
                "results": [
                    {
                        "task": {"type": "object-tracking", "name": "Single object tracking"},
                        "dataset": {
                            "type": v.dataset,
                            "name": f"{v.dataset} {v.split or ''} (first {v.sequences} sequences, "
                            f"up to {v.max_frames or 'all'} frames)".replace("  ", " "),
                            "split": v.split,
                        },
                        "metrics": [
                            {"type": "ao", "name": "AO", "value": float(validation["val/ao"])},
                            *(
                                [{"type": "sr50", "name": "SR0.5", "value": float(validation["val/sr50"])}]
                                if "val/sr50" in validation
                                else []
                            ),
                        ],
                    }
                ],
            }
        ]
    return meta


def write_model_card(model_dir: str | Path, recipe, log_history: list[dict], family: str | None = None) -> Path:
    """Write ``model_dir/README.md`` (atomically): Hub metadata, how to track with it, scores, the recipe."""
    validation = last_validation(log_history)
    meta = card_metadata(recipe, family, validation)
    recipe_yaml = yaml.safe_dump(recipe.model_dump(), sort_keys=False)
    scores = (
        "no validation run was logged"
        if validation is None
        else f"validation at step {validation.get('step')}: AO {validation['val/ao']:.3f}"
        + (f", SR0.5 {validation['val/sr50']:.3f}" if "val/sr50" in validation else "")
        + " (a training-progress figure on the first frames; `r1track eval` gives benchmark numbers)"
    )
    body = f"""# R1-Track policy ({recipe.stage.upper()})

A multimodal LLM trained with r1track to track single objects:
{recipe.stage.upper()} from `{recipe.model.name_or_path}`; {scores}.

```python
import r1track

tracker = r1track.load_tracker("PATH_OR_HUB_ID")   # the tracker settings of r1track.json apply
boxes = tracker.track("video.mp4", box=(x, y, w, h))
```

## Recipe

```yaml
{recipe_yaml}```
"""
    path = Path(model_dir) / "README.md"
    atomic_write_text(path, "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n" + body)
    return path


def push_policy(model_dir: str | Path, args) -> str:
    """Upload the saved policy (weights, processor, ``r1track.json``, card) with the trainer's hub options
    (``push_to_hub``, ``hub_model_id``, ``hub_token``, ``hub_private_repo``, ``hub_revision``); the repo id."""
    from huggingface_hub import HfApi

    api = HfApi(token=args.hub_token)
    repo = api.create_repo(
        args.hub_model_id or Path(args.output_dir).name, private=args.hub_private_repo, exist_ok=True
    )
    api.upload_folder(
        repo_id=repo.repo_id,
        folder_path=str(model_dir),
        revision=getattr(args, "hub_revision", None),
        commit_message="r1track: trained policy",
    )
    return repo.repo_id
