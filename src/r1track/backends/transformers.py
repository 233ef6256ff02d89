"""Run a checkpoint in-process with transformers: batched generation with left padding.

Prompts are left-padded so every sequence's last prompt token sits at the end of the batch and new
tokens are appended in the same column for all sequences; Qwen-VL models derive their (multimodal
rotary) positions from the attention mask, so a padded request gets exactly the answer it gets alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from r1track.backends.base import Backend, Request, check_request, to_pil
from r1track.errors import R1TrackError


def pick_device(device: str | None = "auto") -> str:
    """``auto``: the first CUDA GPU, else Apple's MPS, else the CPU."""
    if device not in (None, "auto"):
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _torch_dtype(dtype):
    import torch

    if dtype in (None, "auto") or isinstance(dtype, torch.dtype):
        return dtype or "auto"
    try:
        value = getattr(torch, str(dtype))
    except AttributeError:
        value = None
    if not isinstance(value, torch.dtype):
        raise R1TrackError(f"unknown dtype {dtype!r}; use auto, bfloat16, float16 or float32")
    return value


class TransformersBackend(Backend):
    """A transformers checkpoint (hub id or local path, safetensors only) or an already-loaded model.

    ``model`` is a hub id / path, or a loaded model with ``processor`` given too (the training callback
    evaluates the model being trained this way). ``temperature == 0`` is greedy decoding; above 0 it
    samples with ``top_p``/``top_k`` (defaults disable them: released Qwen generation configs set
    ``top_k=1``, which would make "sampling" greedy). Other settings of the checkpoint's generation
    config (e.g. Qwen's ``repetition_penalty=1.05``) apply, as they do on a vLLM server; override them
    with ``generation_kwargs`` (also how a benchmark forces ``min_new_tokens``).
    ``min_pixels``/``max_pixels`` override the processor's image resize limits.
    ``max_batch_size`` splits larger batches into chunks (memory).
    """

    def __init__(
        self,
        model,
        device: str | None = "auto",
        dtype="auto",
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        family: str | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        processor=None,
        top_p: float = 1.0,
        top_k: int = 0,
        max_batch_size: int | None = None,
        generation_kwargs: dict | None = None,
    ):
        from r1track.families import detect_family

        if max_new_tokens < 1:
            raise R1TrackError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if temperature < 0:
            raise R1TrackError(f"temperature must be >= 0, got {temperature}")
        if isinstance(model, (str, os.PathLike)):
            self.model_name = str(model)
            self.model, self.processor = self._load(str(model), device, dtype, attn_implementation, trust_remote_code)
        else:
            if processor is None:
                raise R1TrackError("a loaded model needs its processor: TransformersBackend(model, processor=...)")
            self.model, self.processor = model, processor
            self.model_name = getattr(model.config, "_name_or_path", "") or type(model).__name__
        if processor is not None and isinstance(model, (str, os.PathLike)):
            self.processor = processor
        image_processor = getattr(self.processor, "image_processor", None)
        if image_processor is None:
            raise R1TrackError(f"{self.model_name}: its processor has no image processor (not a vision model?)")
        if min_pixels or max_pixels:
            size = dict(image_processor.size)
            size["shortest_edge"] = min_pixels or size.get("shortest_edge")
            size["longest_edge"] = max_pixels or size.get("longest_edge")
            image_processor.size = size
        self.min_pixels = _size_value(image_processor, "shortest_edge", "min_pixels")
        self.max_pixels = _size_value(image_processor, "longest_edge", "max_pixels")
        self.family = family or detect_family(self.model.config)
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.top_p, self.top_k = float(top_p), int(top_k)
        self.max_batch_size = max_batch_size
        self.generation_kwargs = dict(generation_kwargs or {})
        self.deterministic = self.temperature == 0

    @staticmethod
    def _load(name: str, device, dtype, attn_implementation, trust_remote_code):
        try:
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as e:
            raise R1TrackError("the transformers backend needs `pip install r1track[mllm]`") from e
        if Path(name).exists() and not Path(name, "config.json").is_file():
            raise R1TrackError(f"{name}: not a checkpoint directory (no config.json)")
        kwargs = dict(dtype=_torch_dtype(dtype), use_safetensors=True, trust_remote_code=trust_remote_code)
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        try:
            processor = AutoProcessor.from_pretrained(name, trust_remote_code=trust_remote_code)
            model = AutoModelForImageTextToText.from_pretrained(name, **kwargs)
        except (OSError, ValueError) as e:
            raise R1TrackError(f"cannot load {name} with transformers: {e}") from e
        return model.to(pick_device(device)).eval(), processor  # type: ignore[arg-type]

    # ------------------------------------------------------------------ generation
    def prompts(self, requests: list[Request]) -> list[str]:
        """The chat-template text of each request (image placeholders expanded later by the processor)."""
        return [
            self.processor.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=False) for r in requests
        ]

    def _generate_options(self) -> dict:
        options: dict = {"max_new_tokens": self.max_new_tokens}
        if self.temperature == 0:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            options.update(do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        tokenizer = self.processor.tokenizer
        if tokenizer.pad_token_id is not None:
            options["pad_token_id"] = tokenizer.pad_token_id
        options.update(self.generation_kwargs)
        return options

    def generate(self, requests: list[Request]) -> list[str]:
        if not requests:
            return []
        step = self.max_batch_size or len(requests)
        replies: list[str] = []
        for start in range(0, len(requests), step):
            replies += self._generate_batch(requests[start : start + step])
        return replies

    def _generate_batch(self, requests: list[Request]) -> list[str]:
        import torch

        for r in requests:
            check_request(r)
        texts = self.prompts(requests)
        images = [[to_pil(im) for im in r.images] for r in requests]
        has_images = any(images)
        inputs = self.processor(
            text=texts,
            images=images if has_images else None,
            padding=True,
            padding_side="left",  # per call, so a processor shared with a trainer keeps its own side
            return_tensors="pt",
        )
        inputs = inputs.to(self.model.device)
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                output = self.model.generate(**inputs, **self._generate_options())
        finally:
            self.model.train(was_training)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def _size_value(image_processor, key: str, legacy: str) -> int | None:
    size = getattr(image_processor, "size", None) or {}
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return int(value) if value else getattr(image_processor, legacy, None)
