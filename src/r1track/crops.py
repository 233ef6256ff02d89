"""Square context crops around a box, and the exact maps between crop and frame pixels.

A ``Crop`` is the square region ``[x1, x1+side) x [y1, y1+side)`` of a frame, resized to ``size x size``.
Both maps are affine in continuous pixel coordinates (see ``r1track.boxes``): a frame point ``X`` lies
at ``(X - x1) * scale`` in the crop, ``scale = size / side``. ``extract`` samples the image with the same
convention (OpenCV's resize aligns pixel centres, so crop pixel ``u`` covers frame ``[x1 + u/scale,
x1 + (u+1)/scale)``), so a box drawn in the frame lands where ``to_crop`` says.

The recipe follows R1-Track (and the Siamese trackers before it): ``side = ceil(sqrt(w*h) * factor)``,
centred on the box centre, the corner rounded to whole pixels so the crop is a plain slice of the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from r1track.boxes import as_boxes, clip_to_image, intersection

PADS = ("constant", "mean")


@dataclass(frozen=True)
class Crop:
    """Square frame region ``[x1, x1+side) x [y1, y1+side)`` shown at ``size x size`` pixels."""

    x1: float
    y1: float
    side: float
    size: int

    def __post_init__(self):
        if not (self.side > 0 and self.size > 0):
            raise ValueError(f"crop side and size must be positive, got side={self.side}, size={self.size}")

    @property
    def scale(self) -> float:
        return self.size / self.side

    def to_crop(self, boxes_xywh) -> np.ndarray:
        """Frame xywh -> crop-pixel xywh (float, not clipped: a box may leave the crop)."""
        b = as_boxes(boxes_xywh)
        s = self.scale
        return np.concatenate([(b[..., :2] - (self.x1, self.y1)) * s, b[..., 2:] * s], axis=-1)

    def to_frame(self, boxes_xywh) -> np.ndarray:
        """Crop-pixel xywh -> frame xywh; the inverse of ``to_crop``."""
        b = as_boxes(boxes_xywh)
        s = self.scale
        return np.concatenate([b[..., :2] / s + (self.x1, self.y1), b[..., 2:] / s], axis=-1)

    def visible_share(self, box_xywh) -> float:
        """Share of a frame box's area inside this crop's square region (0 for a box without area)."""
        box = as_boxes(box_xywh)
        area = box[2] * box[3]
        region = np.array([self.x1, self.y1, self.side, self.side], dtype=np.float64)
        return float(intersection(box, region) / area) if area > 0 else 0.0

    def as_list(self) -> list[float]:
        """``[x1, y1, side, size]``: the provenance record stored with training pairs."""
        return [self.x1, self.y1, self.side, self.size]


def crop_region(box_xywh, factor: float, size: int, jitter=(0.0, 0.0)) -> Crop:
    """The square crop of side ``ceil(sqrt(w*h) * factor)`` centred on the box centre + ``jitter * side``.

    The corner is rounded (half up) to whole pixels so ``extract`` is a slice plus a resize. A box with
    no area still gets a 1-pixel crop rather than an error: the tracker never feeds one, and training
    data with ill-annotated boxes (GOT-10k has h = 0 boxes) should not crash pair building.
    """
    x, y, w, h = (float(v) for v in as_boxes(box_xywh))
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"cannot crop around a non-finite box {[x, y, w, h]}")
    side = max(1, math.ceil(math.sqrt(max(w, 0.0) * max(h, 0.0)) * factor))
    cx = x + w / 2 + jitter[0] * side
    cy = y + h / 2 + jitter[1] * side
    return Crop(math.floor(cx - side / 2 + 0.5), math.floor(cy - side / 2 + 0.5), side, int(size))


def _pad_value(image: np.ndarray, pad: str) -> tuple[float, ...]:
    if pad == "constant":
        return (0.0,) * 4
    if pad == "mean":
        return tuple(float(v) for v in cv2.mean(image))  # per-channel mean of the whole frame
    raise ValueError(f"pad must be one of {PADS}, got {pad!r}")


def extract(image: np.ndarray, crop: Crop, pad: str = "constant") -> np.ndarray:
    """The crop as a ``(size, size, C)`` uint8 image; parts outside the frame are padded.

    ``pad="constant"`` pads with black (the reference recipe), ``"mean"`` with the frame's per-channel
    mean colour. A whole-pixel crop inside the frame is a slice plus a resize; any other goes through
    ``warpAffine`` restricted to the output pixels that see the frame, so memory and time are bounded by
    the output size (a box of 4000 px, or 1e9, on a small frame costs no more than a normal one).
    """
    value = _pad_value(image, pad)
    h, w = image.shape[:2]
    x1, y1, side, size = crop.x1, crop.y1, crop.side, crop.size
    if all(float(v).is_integer() for v in (x1, y1, side)) and x1 >= 0 and y1 >= 0 and x1 + side <= w and y1 + side <= h:
        part = image[int(y1) : int(y1 + side), int(x1) : int(x1 + side)]
        if side == size:
            return np.ascontiguousarray(part)
        return cv2.resize(part, (size, size), interpolation=cv2.INTER_LINEAR)
    channels = image.shape[2:]
    fill = np.clip(np.round(value[: channels[0] if channels else 1]), 0, 255).astype(np.uint8)
    out = np.empty((size, size) + channels, np.uint8)
    out[:] = fill if channels else fill[0]
    # Output pixel centre u + 0.5 <-> frame point x1 + (u + 0.5) / scale, i.e. source index
    # x1 + (u + 0.5) / scale - 0.5 (OpenCV indexes pixel centres). Only output pixels whose source
    # lies within one pixel of the frame can differ from the padding, so only they are warped; this
    # also keeps OpenCV's fixed-point source coordinates small.
    cols, rows = _window(x1, crop.scale, size, w), _window(y1, crop.scale, size, h)
    if cols is None or rows is None:
        return out
    (u0, u1), (v0, v1) = cols, rows
    s = crop.scale
    m = np.array([[1 / s, 0, x1 + (u0 + 0.5) / s - 0.5], [0, 1 / s, y1 + (v0 + 0.5) / s - 0.5]], dtype=np.float64)
    out[v0:v1, u0:u1] = cv2.warpAffine(
        image,
        m,
        (u1 - u0, v1 - v0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=value,
    ).reshape((v1 - v0, u1 - u0) + channels)
    return out


def _window(start: float, scale: float, size: int, extent: int) -> tuple[int, int] | None:
    """The output pixels ``[first, last)`` along one axis whose source index lies in ``(-1, extent)``."""
    source = start + (np.arange(size) + 0.5) / scale - 0.5
    inside = np.nonzero((source > -1) & (source < extent))[0]
    if len(inside) == 0:
        return None
    return int(inside[0]), int(inside[-1]) + 1


def clip_box(box_xywh, image_size) -> np.ndarray:
    """The part of an xywh box inside a ``(W, H)`` frame (zero size when fully outside)."""
    width, height = image_size
    return clip_to_image(box_xywh, width, height)
