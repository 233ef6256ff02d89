"""The run manifest: what made a tracker folder's results, so that resuming never mixes two runs.

``<tracker_dir>/r1track-run.json`` records the tracker (class and settings), the backend (class and
settings), the model and a fingerprint of its files, and the r1track version. A run resumes only
into a folder whose manifest matches; see docs/evaluation.md.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from r1track import __version__
from r1track.atomic import atomic_write_text
from r1track.errors import R1TrackError

MANIFEST = "r1track-run.json"
# not recorded: settings that never change a result (how fast, where, how patiently: a resume may
# change them), the model (recorded on its own), the name (the folder's) and per-sequence state
NOT_SETTINGS = {
    "device",
    "concurrency",
    "retries",
    "backoff",
    "timeout",
    "max_batch_size",
    "base_url",
    "model_name",
    "name",
    "frame_index",
    "unparsable",
    "rejected",
    "absences",
    "box",
    "truth",
    "template",
    "template_text",
    "factor",
    "calibration",
}
MODEL_FILES = {".json", ".safetensors", ".bin", ".model", ".txt", ".jinja", ".tiktoken"}
SAMPLES, CHUNK = 16, 1 << 16


def fingerprint(model) -> str | None:
    """sha256 of a local checkpoint's files (config, tokenizer, settings in full; each weight file's
    size and 16 samples of 64 KiB spread over it, as hashing gigabytes at every resume would cost
    minutes); None for hub ids and served model names."""
    path = Path(str(model))
    if not path.exists():
        return None
    files = sorted(p for p in path.iterdir() if p.suffix in MODEL_FILES) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in (f for f in files if f.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.name}:{size}\n".encode())
        with file.open("rb") as f:
            if size <= SAMPLES * CHUNK:
                digest.update(f.read())
                continue
            for k in range(SAMPLES):
                f.seek((size - CHUNK) * k // (SAMPLES - 1))
                digest.update(f.read(CHUNK))
    return digest.hexdigest()[:16]


def _settings(obj) -> dict:
    """An object's public settings of plain types, tuples as lists (what a run was configured with)."""
    out = {}
    for k, v in sorted(vars(obj).items()):
        if isinstance(v, tuple) and all(isinstance(x, (int, float)) for x in v):
            v = list(v)
        if not k.startswith("_") and k not in NOT_SETTINGS and isinstance(v, (str, int, float, bool, list, type(None))):
            out[k] = v
    return out


def describe(tracker) -> dict:
    """The manifest of a run of ``tracker`` (a fresh instance)."""
    backend = getattr(tracker, "backend", None)
    model = getattr(backend, "model_name", None)
    return {
        "tracker": type(tracker).__name__,
        "tracker_options": _settings(tracker),
        "backend": type(backend).__name__ if backend is not None else None,
        "backend_options": _settings(backend) if backend is not None else {},
        "model": None if model is None else str(model),
        "model_fingerprint": None if model is None else fingerprint(model),
        "r1track_version": __version__,
    }


def _differences(old: dict, new: dict) -> list[str]:
    # a moved checkpoint with the same fingerprint is the same model
    skip = {"model"} if old.get("model_fingerprint") and new.get("model_fingerprint") else set()
    out = []
    for key in sorted((set(old) | set(new)) - skip):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{key} {a!r} -> {b!r}")
    return out


def claim(tracker_dir: str | Path, manifest: dict, overwrite: bool) -> None:
    """Make ``tracker_dir`` hold the results of the run ``manifest`` describes.

    Resuming needs a matching manifest; results of another run (or of an older r1track, without a
    manifest) stop the run unless ``overwrite``, which removes another run's folder first.
    """
    tracker_dir = Path(tracker_dir)
    path = tracker_dir / MANIFEST
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        old = None
    except (ValueError, OSError) as e:
        raise R1TrackError(f"{path}: unreadable run manifest ({e}); pass --overwrite to replace it") from None
    way_out = "pass --overwrite to replace them or --name to write to a new folder"
    diff = None if old is None else _differences(old, manifest)
    if diff == []:
        return  # the same run: resume (and leave the folder untouched)
    if diff:
        if not overwrite:
            shown = "; ".join(diff[:4]) + ("; ..." if len(diff) > 4 else "")
            raise R1TrackError(f"{tracker_dir} holds results of another run ({shown}): {way_out}")
        shutil.rmtree(tracker_dir)
    elif old is None and tracker_dir.is_dir() and any(not p.name.startswith(".") for p in tracker_dir.iterdir()):
        if not overwrite:
            raise R1TrackError(
                f"{tracker_dir} holds results without a run manifest (an older r1track or "
                f"another tool), so resuming cannot be checked: {way_out}"
            )
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
