"""The backend interface: a batch of (images, chat messages) requests in, one reply text per request out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from r1track.errors import R1TrackError


@dataclass
class Request:
    """One model query. ``messages`` use TRL's conversational format with one ``{"type": "image"}``
    placeholder per entry of ``images`` (RGB uint8 arrays), in order. ``meta`` carries what diagnostic
    backends and logging need: ``kind`` ("track" | "ground"), ``family``, ``image_size`` ((w, h) of the
    last image) and, only for trackers given ground truth, ``truth`` (xyxy in the last image's pixels)."""

    images: list[np.ndarray]
    messages: list[dict]
    meta: dict = field(default_factory=dict)


class Backend(ABC):
    """A model that answers requests. ``family`` names the coordinate convention of its answers."""

    family: str = "qwen2.5-vl"

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[str]:
        """Answer every request (batched where the backend can); one string per request, in order."""

    def close(self) -> None:  # noqa: B027 -- optional: most backends hold nothing to release
        """Release resources (servers, engines, thread pools)."""


def to_pil(image: np.ndarray):
    """RGB uint8 (H, W, 3) -> PIL (processors guess the channel axis of tiny arrays; PIL never does)."""
    from PIL import Image

    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise R1TrackError(f"request images must be RGB uint8 (H, W, 3), got {array.dtype} {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array), mode="RGB")


def count_images(messages: list[dict]) -> int:
    """Image placeholders in conversational messages (``{"type": "image"}`` parts)."""
    n = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            n += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "image")
    return n


def check_request(request: Request) -> None:
    placeholders = count_images(request.messages)
    if placeholders != len(request.images):
        raise R1TrackError(
            f"a request has {len(request.images)} image(s) but {placeholders} image placeholder(s) in its messages"
        )


def fill_images(request: Request, image_part: Callable[[np.ndarray], dict]) -> list[dict]:
    """The request's messages with each ``{"type": "image"}`` placeholder replaced by
    ``image_part(image)`` for the request's next image, in order (a server's or engine's message format);
    text parts and string contents pass through."""
    check_request(request)
    images = iter(request.images)
    messages = []
    for message in request.messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if part.get("type") == "image":
                    parts.append(image_part(next(images)))
                elif part.get("type") == "text":
                    parts.append({"type": "text", "text": part["text"]})
                else:
                    raise R1TrackError(f"unsupported message part type {part.get('type')!r}")
            content = parts
        messages.append({"role": message["role"], "content": content})
    return messages
