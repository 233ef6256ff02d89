"""Nano R1-Track: a few-million-parameter Qwen2.5-VL trained from scratch on the CPU, shipped as the default model.

The nano model is the real ``Qwen2_5_VLForConditionalGeneration`` (vision tower, 2x2 merger, multimodal
rotary positions) with small widths, the real Qwen2.5-VL image processor and chat template, and a
small tokenizer that works like Qwen's: the same pre-tokenizer (digits one by one), byte-level BPE,
NFC normalisation, and the same added tokens (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``,
``<|vision_start|>``, ``<|image_pad|>``, ...), with new small ids right after the BPE vocabulary.
The BPE merges are learnt from the texts the tracker exchanges with the model (the prompt variants,
grounding queries on the synthetic benchmark's descriptions, answers), so those take few tokens;
any other text still encodes (256 byte tokens) and decodes back exactly.

Inference settings the model was trained with are written beside the weights as ``r1track.json``
(``family``, ``crop_size``, ``prompt``, factors); ``MLLMTracker``'s command-line factory uses them as
defaults. Whole-frame grounding images are capped at ``NANO_MAX_PIXELS`` by the saved processor, so
text initialisation stays cheap; 112-px crops (a multiple of 28) are never resized.

The shipped checkpoint (``default_model_path()``) is reproduced end to end by
``scripts/reproduce_nano.py`` (synthetic data, ``r1track train sft`` then ``r1track train grpo``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from r1track.atomic import atomic_dir
from r1track.errors import R1TrackError
from r1track.tiny import (
    QWEN2_ADDED_TOKENS,
    QWEN2_PRETOKENIZE_REGEX,
    ModelSizes,
    bpe_tokenizer,
    build_config,
    make_processor,
)

FAMILY = "qwen2.5-vl"
SETTINGS_FILE = "r1track.json"
NANO_BPE_VOCAB = 488  # byte-level BPE tokens; with the 22 Qwen added tokens: 510 ids
NANO_VOCAB_SIZE = 512  # embedding rows (a multiple of 64; the last two ids are unused)
NANO_CROP_SIZE = 112  # a multiple of 28: crop pixels are model coordinates, 16 visual tokens per image
NANO_MIN_PIXELS = 56 * 56
NANO_MAX_PIXELS = 112 * 112  # whole frames for grounding are shrunk to about 112 x 112 (<= 16 tokens)
SYSTEM_MESSAGE = "You are a helpful assistant."

# Text rotary positions. Contiguous (t, h, w) sections at theta 1e6 and a 32-dim head give the width
# axis only frequencies below 2e-3 rad per position: answer tokens cannot tell a 4x4 grid's columns
# apart and a from-scratch model ignores the image (benchmarks/README.md, "Nano R1-Track"). Sixteen
# 1-wide sections (transformers assigns section i to axis i % 3) interleave t, h, w over all
# frequencies, as Qwen3-VL's mrope_interleaved; theta 100 keeps ~200-token contexts inside the slowest
# period (~480 tokens).
NANO_ROPE_THETA = 100.0
NANO_MROPE_SECTION = [1] * 16

NANO_SIZES = ModelSizes(
    hidden_size=192,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=6,
    num_key_value_heads=2,
    vision_depth=4,
    vision_hidden_size=128,
    vision_intermediate_size=256,
    vision_num_heads=4,
    vocab_size=NANO_VOCAB_SIZE,
    tie_word_embeddings=True,
    initializer_range=0.02,  # a from-scratch init (the tiny test models use 0.2 on purpose)
)


@dataclass(frozen=True)
class NanoSettings:
    """Tracker settings a checkpoint was trained for (``r1track.json`` beside its weights)."""

    family: str = FAMILY
    crop_size: int = NANO_CROP_SIZE
    prompt: str = "current"
    template_factor: float = 4.0
    search_factor: float = 4.0
    max_scale_change: float | None = None
    scale_smoothing: float | None = None
    absent_search_scale: float = 1.5
    absent_search_max: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- tokenizer


def _corpus_words() -> tuple[list[str], list[str], list[str]]:
    """Sizes, colours, shapes of the synthetic benchmark's descriptions ("the small red circle")."""
    from r1track import synth

    return [name for name, _ in synth.SIZE_LIMITS], list(synth.COLOURS), list(synth.SHAPES)


def tokenizer_corpus(seed: int = 0, boxes: int = 400) -> list[str]:
    """Texts the BPE merges are learnt from: every prompt variant, grounding queries and answers.

    Deterministic (fixed generator), so the same merges are learnt on every machine.
    """
    import numpy as np

    from r1track.prompts import GROUNDING_PROMPT, PROMPT_IMAGES, PROMPTS, THINK_PREFIX, format_box, tracking_text
    from r1track.training.pairs import grounding_answer

    rng = np.random.default_rng(seed)

    def box() -> str:
        x1, y1 = rng.integers(0, 300, size=2)
        w, h = rng.integers(4, 200, size=2)
        return format_box([x1, y1, x1 + w, y1 + h])

    texts = [SYSTEM_MESSAGE, "system\n", "user\n", "assistant\n", THINK_PREFIX, "<think> </think> <answer> </answer>"]
    for variant in (v for v in PROMPTS if v != "compact"):  # its words are current's: the merges stay as they were
        for _ in range(8 if variant in ("current", "direct") else 2):
            texts.append(tracking_text([box() for _ in range(PROMPT_IMAGES[variant] - 1)], variant))
    sizes, colours, shapes = _corpus_words()
    for size in sizes:
        for colour in colours:
            for shape in shapes:
                description = f"the {size} {colour} {shape}"
                texts.append(GROUNDING_PROMPT.format(description=description))
                texts.append(grounding_answer([float(v) for v in box()[1:-1].split(",")], description))
    texts += [box() for _ in range(boxes)]
    return texts


def build_tokenizer(seed: int = 0):
    """The nano tokenizer: Qwen2's pre-tokenizer and byte-level BPE with merges learnt on our texts,
    the Qwen2.5-VL added tokens after them, ``<|im_end|>`` as end of turn, ``<|endoftext|>`` as padding."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=NANO_BPE_VOCAB,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    bpe.train_from_iterator(tokenizer_corpus(seed), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab = model["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    if len(vocab) > NANO_BPE_VOCAB:
        raise R1TrackError(f"nano tokenizer: {len(vocab)} BPE tokens, more than {NANO_BPE_VOCAB}")
    tokenizer = bpe_tokenizer(vocab, merges, QWEN2_ADDED_TOKENS, model_max_length=32768)
    first = len(vocab)
    for offset, (token, _) in enumerate(QWEN2_ADDED_TOKENS):
        if tokenizer.convert_tokens_to_ids(token) != first + offset:
            raise R1TrackError(f"nano tokenizer: {token} did not get id {first + offset}")
    if len(tokenizer) > NANO_VOCAB_SIZE:
        raise R1TrackError(f"nano tokenizer: {len(tokenizer)} ids do not fit {NANO_VOCAB_SIZE} embedding rows")
    return tokenizer


def make_nano_processor(seed: int = 0):
    """tiny.py's Qwen2.5-VL processor (image processor, chat template) around the nano tokenizer,
    with whole-frame images capped at ``NANO_MAX_PIXELS``."""
    processor = make_processor(FAMILY, tokenizer=build_tokenizer(seed))
    processor.image_processor.size = {"shortest_edge": NANO_MIN_PIXELS, "longest_edge": NANO_MAX_PIXELS}
    for attr, value in (("min_pixels", NANO_MIN_PIXELS), ("max_pixels", NANO_MAX_PIXELS)):
        if hasattr(processor.image_processor, attr):
            setattr(processor.image_processor, attr, value)
    return processor


# ---------------------------------------------------------------- model


def token_ids(tokenizer) -> dict[str, int]:
    ids = {
        name: tokenizer.convert_tokens_to_ids(tok)
        for name, tok in (
            ("endoftext", "<|endoftext|>"),
            ("im_end", "<|im_end|>"),
            ("image", "<|image_pad|>"),
            ("video", "<|video_pad|>"),
            ("vision_start", "<|vision_start|>"),
            ("vision_end", "<|vision_end|>"),
        )
    }
    return ids


def build_nano_config(tokenizer, sizes: ModelSizes = NANO_SIZES):
    """tiny.py's Qwen2.5-VL config at nano widths, with the nano tokenizer's special-token ids."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # tiny's config carries the real Qwen ids until they are replaced below
    try:
        config = build_config(FAMILY, sizes)
    finally:
        hf_logging.set_verbosity(verbosity)
    ids = token_ids(tokenizer)
    config.image_token_id, config.video_token_id = ids["image"], ids["video"]
    config.vision_start_token_id, config.vision_end_token_id = ids["vision_start"], ids["vision_end"]
    text = config.text_config
    text.bos_token_id, text.eos_token_id, text.pad_token_id = ids["endoftext"], ids["im_end"], ids["endoftext"]
    text.max_position_embeddings = 4096
    text.rope_parameters = {
        "rope_type": "default",
        "rope_theta": NANO_ROPE_THETA,
        "mrope_section": list(NANO_MROPE_SECTION),
    }
    return config


def build_nano_model(tokenizer, seed: int = 0, sizes: ModelSizes = NANO_SIZES):
    """An untrained nano model (seeded without touching the global RNG), float32, eval mode."""
    import torch
    import transformers

    config = build_nano_config(tokenizer, sizes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.float32)
    ids = token_ids(tokenizer)
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=ids["endoftext"], eos_token_id=[ids["im_end"], ids["endoftext"]], pad_token_id=ids["endoftext"]
    )
    return model.eval()


def write_settings(out: str | Path, settings: NanoSettings | None = None) -> Path:
    path = Path(out) / SETTINGS_FILE
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps((settings or NanoSettings()).to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_settings(model_dir: str | Path) -> dict:
    """The tracker settings saved beside a checkpoint (``r1track.json``), or {} when there are none."""
    path = Path(model_dir) / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        from r1track.errors import DataError

        raise DataError(path, f"not valid JSON: {e}") from None
    known = set(NanoSettings.__dataclass_fields__)
    return {k: v for k, v in data.items() if k in known} if isinstance(data, dict) else {}


def make_nano_model(
    out: str | Path, seed: int = 0, overwrite: bool = False, settings: NanoSettings | None = None
) -> Path:
    """Write an untrained nano checkpoint (safetensors, processor, ``r1track.json``: ``settings``) to ``out``.

    Written in a staging folder beside ``out`` and renamed into place: the checkpoint is whole or absent.
    """
    out = Path(out)
    if (out.is_file() or (out.is_dir() and any(out.iterdir()))) and not overwrite:
        raise R1TrackError(f"{out}: already exists; pass overwrite=True (--overwrite) to replace it")
    processor = make_nano_processor()
    model = build_nano_model(processor.tokenizer, seed)
    with atomic_dir(out) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
        write_settings(staging, settings)
    return out


def default_model_path() -> Path:
    """The packaged trained nano checkpoint (``r1track/assets/nano``); R1TrackError when not installed."""
    path = Path(__file__).resolve().parent / "assets" / "nano"
    if not (path / "config.json").is_file():
        raise R1TrackError(f"{path}: the nano checkpoint is not installed (scripts/reproduce_nano.py --install)")
    return path
