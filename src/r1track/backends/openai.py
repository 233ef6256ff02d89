"""Any OpenAI-compatible chat server (``vllm serve MODEL``, a hosted API) through the official client.

Images travel as base64 data URLs in ``image_url`` parts: JPEG at quality 95 by default -- the
encoding of the training pairs (as in the reference), and about 0.5 ms per 336-px crop where PNG takes
10-25 ms, which would cap a tracker at tens of frames/s -- or lossless PNG (fastest zlib level) when
the server must see the crop's exact pixels. They go at the places of the request's image
placeholders (images first, then the text, for tracking prompts); the server applies the model's chat
template. Requests of a batch run concurrently on a thread pool and replies come back in request order.

Failures: timeouts, connection errors, HTTP 408/409/429/5xx and bodies that are not a chat completion
are retried with exponential backoff; after ``retries`` retries, or at once for other HTTP errors
(a wrong model name, a bad key), an ``R1TrackError`` names the server. A well-formed completion whose
text is empty or nonsense is returned as it is: the tracker's parser deals with answers.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from r1track.backends.base import Backend, Request, fill_images, to_pil
from r1track.errors import R1TrackError

RETRY_STATUS = {408, 409, 429}


def image_data_url(image, image_format: str = "jpeg", quality: int = 95) -> str:
    """An RGB uint8 array as a ``data:image/...;base64,`` URL."""
    fmt = image_format.lower()
    if fmt not in ("png", "jpeg", "jpg"):
        raise R1TrackError(f"image_format must be png or jpeg, got {image_format!r}")
    fmt = "jpeg" if fmt == "jpg" else fmt
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format=fmt.upper(), **({"quality": quality} if fmt == "jpeg" else {"compress_level": 1}))
    return f"data:image/{fmt};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def to_openai_messages(request: Request, image_format: str = "jpeg") -> list[dict]:
    """Conversational messages -> OpenAI chat messages, each image placeholder an ``image_url`` part."""
    return fill_images(
        request, lambda image: {"type": "image_url", "image_url": {"url": image_data_url(image, image_format)}}
    )


class _Retry(Exception):
    """A failure worth another attempt."""


def reply_text(body: str) -> str:
    """The assistant text of a chat-completion body; ``_Retry`` if the body is not a completion."""
    try:
        data = json.loads(body)
        message = data["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise _Retry(f"the reply is not a chat completion ({type(e).__name__}): {body[:120]!r}") from e
    if not isinstance(message, dict):
        raise _Retry(f"the reply's message is not an object: {body[:120]!r}")
    content = message.get("content")
    return content if isinstance(content, str) else ""


class OpenAIBackend(Backend):
    """Chat completions from ``base_url`` (e.g. ``http://localhost:8000/v1``) for the served ``model``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        concurrency: int = 8,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        family: str = "qwen2.5-vl",
        image_format: str = "jpeg",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        extra_body: dict | None = None,
    ):
        try:
            from openai import OpenAI
        except ImportError as e:
            raise R1TrackError("the openai backend needs `pip install r1track[openai]`") from e
        if not base_url:
            raise R1TrackError("the openai backend needs a server URL (--base-url http://HOST:PORT/v1)")
        if concurrency < 1 or retries < 0 or timeout <= 0:
            raise R1TrackError("concurrency must be >= 1, retries >= 0 and timeout > 0")
        self.base_url = str(base_url).rstrip("/")
        self.model_name = model
        self.max_new_tokens, self.temperature = int(max_new_tokens), float(temperature)
        self.deterministic = self.temperature == 0
        self.retries, self.backoff = int(retries), float(backoff)
        self.family = family
        self.image_format = image_format
        self.min_pixels, self.max_pixels = min_pixels, max_pixels  # the server's; unknown unless given
        self.extra_body = dict(extra_body or {})
        # Retries are ours (one loop for HTTP errors and malformed bodies alike), not the client's.
        self.client = OpenAI(
            base_url=self.base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=float(timeout),
            max_retries=0,
        )
        self.pool = ThreadPoolExecutor(max_workers=int(concurrency), thread_name_prefix="r1track-openai")

    def generate(self, requests: list[Request]) -> list[str]:
        if not requests:
            return []
        payloads = [to_openai_messages(r, self.image_format) for r in requests]
        return list(self.pool.map(self._complete, payloads))

    def _complete(self, messages: list[dict]) -> str:
        import openai

        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(8.0, self.backoff * 2 ** (attempt - 1)))
            try:
                raw = self.client.chat.completions.with_raw_response.create(
                    model=self.model_name,
                    messages=messages,  # type: ignore[arg-type]  # our chat dicts are what the API takes
                    max_tokens=self.max_new_tokens,
                    temperature=self.temperature,
                    extra_body=self.extra_body or None,
                )
                return reply_text(raw.http_response.text)
            except _Retry as e:
                last = str(e)
            except openai.APITimeoutError:
                last = "timed out"
            except openai.APIConnectionError as e:
                last = f"connection failed ({e.__cause__ or e})"
            except openai.APIStatusError as e:
                last = f"HTTP {e.status_code}: {_short(e.message)}"
                if e.status_code not in RETRY_STATUS and e.status_code < 500:
                    raise R1TrackError(f"OpenAI-compatible server {self.base_url}: {last}") from None
        raise R1TrackError(
            f"OpenAI-compatible server {self.base_url}: {last} (gave up after {self.retries + 1} attempts)"
        )

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()


def _short(text, limit: int = 200) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."
