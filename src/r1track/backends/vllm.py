"""An offline vLLM engine (``pip install r1track[vllm]``; needs a GPU).

Prefix caching is on. vLLM hashes KV-cache blocks by their tokens *and* by a hash of the image data
behind any image placeholder tokens in them, so a cached block is reused only when the same pixels
recur at the same position. For a tracker the shared prefix of one sequence's requests is the system
message plus the template crop (identical for every frame until a template refresh): its KV blocks,
and with them the template's vision-encoder pass, are reused from frame to frame; the search crop
and the text after it (which carries the template box) are computed afresh. Requests of different
sequences share only the system-message blocks.

Sampling starts from the model's generation config (``llm.get_default_sampling_params()``, as a vLLM
server does: e.g. Qwen's ``repetition_penalty=1.05``) with ``temperature``/``max_tokens`` set here.
"""

from __future__ import annotations

from r1track.backends.base import Backend, Request, fill_images, to_pil
from r1track.errors import R1TrackError


def to_vllm_messages(request: Request) -> list[dict]:
    """Conversational messages -> vLLM chat messages, each image placeholder an ``image_pil`` part."""
    return fill_images(request, lambda image: {"type": "image_pil", "image_pil": to_pil(image)})


def _import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise R1TrackError(
            "the vllm backend needs vLLM: `pip install r1track[vllm]` (Linux with a CUDA GPU); "
            "or serve the model with `vllm serve` and use the openai backend"
        ) from e
    return vllm


class VLLMBackend(Backend):
    """``vllm.LLM`` over a hub id or local path; all requests of a batch go to the engine at once."""

    def __init__(
        self,
        model: str,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        dtype: str = "auto",
        family: str | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = 4096,
        max_images: int = 3,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        seed: int = 0,
        trust_remote_code: bool = False,
        engine_kwargs: dict | None = None,
    ):
        vllm = _import_vllm()
        from r1track.families import detect_family

        self.model_name = str(model)
        self.max_new_tokens, self.temperature = int(max_new_tokens), float(temperature)
        self.deterministic = self.temperature == 0
        processor_kwargs = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v}
        kwargs = dict(
            model=self.model_name,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_prefix_caching=True,
            limit_mm_per_prompt={"image": max_images},
            seed=seed,
            trust_remote_code=trust_remote_code,
        )
        if processor_kwargs:
            kwargs["mm_processor_kwargs"] = processor_kwargs
        kwargs.update(engine_kwargs or {})
        self.llm = vllm.LLM(**kwargs)
        model_config = getattr(self.llm, "model_config", None) or self.llm.llm_engine.model_config
        self.family = family or detect_family(model_config.hf_config)
        self.min_pixels, self.max_pixels = _pixel_limits(self.model_name, min_pixels, max_pixels)
        params = self.llm.get_default_sampling_params()
        params.temperature = self.temperature
        params.max_tokens = self.max_new_tokens
        if self.temperature > 0:  # released Qwen configs set top_k=1, which would make sampling greedy
            params.top_k, params.top_p = -1, 1.0
        params.skip_special_tokens = True
        self.sampling_params = params

    def generate(self, requests: list[Request]) -> list[str]:
        if not requests:
            return []
        conversations = [to_vllm_messages(r) for r in requests]
        outputs = self.llm.chat(conversations, self.sampling_params, use_tqdm=False)
        return [o.outputs[0].text if o.outputs else "" for o in outputs]

    def close(self) -> None:
        self.llm = None


def _pixel_limits(model: str, min_pixels, max_pixels):
    """The image resize limits the engine's HF processor uses (its preprocessor config), if readable."""
    if min_pixels and max_pixels:
        return min_pixels, max_pixels
    try:
        from transformers import AutoImageProcessor

        size = AutoImageProcessor.from_pretrained(model).size
        return min_pixels or size.get("shortest_edge"), max_pixels or size.get("longest_edge")
    except Exception:  # the limits only refine full-frame grounding; the engine itself loaded fine
        return min_pixels, max_pixels
