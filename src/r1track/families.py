"""How each model family writes box coordinates, and the image resize its processor applies.

- ``qwen2.5-vl`` grounds in absolute pixels of the image *as its processor resized it* (``smart_resize``:
  both sides multiples of 28 = patch 14 x merge 2, pixel count kept within ``[min_pixels, max_pixels]``).
  Crops of 112/224/336/448 px are multiples of 28, so there crop pixels equal model coordinates; a full
  frame of 321x243 becomes 308x252 and coordinates scale accordingly.
- ``qwen2-vl`` and ``qwen3-vl`` write coordinates normalised to 0..1000 of the image, whatever the
  resize (Qwen3-VL resizes to multiples of 32 = patch 16 x merge 2, which does not matter here).

``encode`` maps xyxy pixels of an image of size ``(w, h)`` to model coordinates, ``decode`` maps back;
they are exact inverses before any rounding to integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from r1track.boxes import as_boxes
from r1track.errors import R1TrackError

# The released Qwen2-VL / Qwen2.5-VL preprocessor_config.json values (min 3,136, max 12,845,056 pixels);
# transformers' class default max (1,003,520) differs, and a backend that knows the processor's real
# limits (transformers, vLLM) overrides these.
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 16384


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = QWEN_MIN_PIXELS, max_pixels: int = QWEN_MAX_PIXELS
) -> tuple[int, int]:
    """``(height, width)`` after the Qwen2-VL/2.5-VL image processor's resize.

    Each side is rounded to a multiple of ``factor``; if the area leaves ``[min_pixels, max_pixels]``
    both sides are scaled by a common factor (floored when shrinking, ceiled when growing) first.
    Same rule as ``transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be below 200, got {width}x{height}")
    h_bar = round(height / factor) * factor  # Python's round (half to even), as upstream
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class Family:
    """A coordinate convention. ``normalised``: 0..``norm`` of the image; else processor-resized pixels.

    ``factor``/``min_pixels``/``max_pixels`` describe the processor's resize; set them to the values of
    the checkpoint's ``preprocessor_config.json`` (``with_pixels``) when they differ from the defaults.
    """

    name: str
    normalised: bool
    factor: int = 28
    min_pixels: int = QWEN_MIN_PIXELS
    max_pixels: int = QWEN_MAX_PIXELS
    norm: float = 1000.0

    def model_size(self, image_size) -> tuple[int, int]:
        """``(w, h)`` of the image as the processor feeds it to the model."""
        w, h = (int(v) for v in image_size)
        rh, rw = smart_resize(h, w, self.factor, self.min_pixels, self.max_pixels)
        return rw, rh

    def _scales(self, image_size) -> np.ndarray:
        w, h = (float(v) for v in image_size)
        if self.normalised:
            sx, sy = self.norm / w, self.norm / h
        else:
            rw, rh = self.model_size(image_size)
            sx, sy = rw / w, rh / h
        return np.array([sx, sy, sx, sy])

    def encode(self, xyxy_pixels, image_size) -> np.ndarray:
        """xyxy in pixels of an image of size ``(w, h)`` -> model coordinates (float, unrounded)."""
        return as_boxes(xyxy_pixels) * self._scales(image_size)

    def decode(self, model_xyxy, image_size) -> np.ndarray:
        """Model coordinates -> xyxy pixels of the ``(w, h)`` image; the inverse of ``encode``."""
        return as_boxes(model_xyxy) / self._scales(image_size)

    def with_pixels(self, min_pixels: int | None = None, max_pixels: int | None = None) -> Family:
        return replace(self, min_pixels=min_pixels or self.min_pixels, max_pixels=max_pixels or self.max_pixels)


FAMILIES = {
    "qwen2.5-vl": Family("qwen2.5-vl", normalised=False),
    "qwen2-vl": Family("qwen2-vl", normalised=True),
    # Qwen3-VL's released preprocessor config: 16-px patches merged 2x2, 64K..16M pixels.
    "qwen3-vl": Family("qwen3-vl", normalised=True, factor=32, min_pixels=65536, max_pixels=16777216),
}

MODEL_TYPES = {
    "qwen2_5_vl": "qwen2.5-vl",
    "qwen2_vl": "qwen2-vl",
    "qwen3_vl": "qwen3-vl",
    "qwen3_vl_moe": "qwen3-vl",
}


def get_family(name, min_pixels: int | None = None, max_pixels: int | None = None) -> Family:
    """The family called ``name`` (a ``Family`` passes through), optionally with other pixel limits."""
    if isinstance(name, Family):
        family = name
    else:
        key = str(name).lower().replace("_", "-")
        key = {"qwen2-5-vl": "qwen2.5-vl", "qwen25-vl": "qwen2.5-vl"}.get(key, key)
        if key not in FAMILIES:
            raise R1TrackError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
        family = FAMILIES[key]
    if min_pixels or max_pixels:
        family = family.with_pixels(min_pixels, max_pixels)
    return family


def detect_family(config, override: str | None = None) -> str:
    """Family name of a transformers config (or a dict / a bare ``model_type`` string).

    ``override`` (a family name, e.g. from ``--family``) wins, for fine-tunes saved under another type.
    """
    if override:
        return get_family(override).name
    if isinstance(config, str):
        model_type = config
    elif isinstance(config, dict):
        model_type = config.get("model_type")
    else:
        model_type = getattr(config, "model_type", None)
    if model_type not in MODEL_TYPES:
        raise R1TrackError(
            f"cannot tell the coordinate family of model_type {model_type!r}; pass --family ({', '.join(FAMILIES)})"
        )
    return MODEL_TYPES[model_type]
