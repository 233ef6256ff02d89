"""The backend interface: a batch of (images, chat messages) requests in, one reply text per request out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


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

    def close(self) -> None:
        """Release resources (servers, engines, thread pools)."""
