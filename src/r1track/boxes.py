"""Box geometry, vectorised over leading dimensions.

Conventions, stated once for the whole package:
- Coordinates are continuous pixel coordinates: the image spans [0, W) x [0, H); pixel (i, j) covers
  [i, i+1) x [j, j+1). A box covers [x1, x2) x [y1, y2).
- ``xywh``: top-left corner and size, (x, y, w, h) -- the format of every benchmark file and of
  ``Sequence.gt`` and tracker outputs.
- ``xyxy``: corners (x1, y1, x2, y2) with x2 = x + w (exclusive, no "-1") -- the format of MLLM answers.
- ``cxcywh``: centre and size, cx = x + w / 2.
- Every function takes arrays of shape (..., 4) (or plain sequences) and returns float64 arrays.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def as_boxes(boxes) -> np.ndarray:
    a = np.asarray(boxes, dtype=np.float64)
    if a.shape[-1:] != (4,):
        raise ValueError(f"boxes must have a last dimension of 4, got shape {a.shape}")
    return a


def xywh_to_xyxy(boxes) -> np.ndarray:
    b = as_boxes(boxes)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_xywh(boxes) -> np.ndarray:
    b = as_boxes(boxes)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_cxcywh(boxes) -> np.ndarray:
    b = as_boxes(boxes)
    return np.concatenate([b[..., :2] + b[..., 2:] / 2, b[..., 2:]], axis=-1)


def cxcywh_to_xywh(boxes) -> np.ndarray:
    b = as_boxes(boxes)
    return np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., 2:]], axis=-1)


def area(boxes) -> np.ndarray:
    b = as_boxes(boxes)
    return np.clip(b[..., 2], 0, None) * np.clip(b[..., 3], 0, None)


def intersection(a, b) -> np.ndarray:
    """Intersection area of xywh boxes (broadcasting)."""
    a, b = xywh_to_xyxy(a), xywh_to_xyxy(b)
    lo = np.maximum(a[..., :2], b[..., :2])
    hi = np.minimum(a[..., 2:], b[..., 2:])
    wh = np.clip(hi - lo, 0, None)
    return wh[..., 0] * wh[..., 1]


def iou(a, b) -> np.ndarray:
    """IoU of xywh boxes; 0 where the union is empty. NaN inputs give NaN."""
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    nan = np.isnan(as_boxes(a)).any(-1) | np.isnan(as_boxes(b)).any(-1)
    return np.where(nan, np.nan, out)


def giou(a, b) -> np.ndarray:
    """Generalised IoU of xywh boxes, in [-1, 1]; degenerate enclosing box gives the IoU."""
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    ax, bx = xywh_to_xyxy(a), xywh_to_xyxy(b)
    lo = np.minimum(ax[..., :2], bx[..., :2])
    hi = np.maximum(ax[..., 2:], bx[..., 2:])
    enclose = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        i = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        g = np.where(enclose > 0, i - (enclose - union) / np.where(enclose > 0, enclose, 1.0), i)
    nan = np.isnan(as_boxes(a)).any(-1) | np.isnan(as_boxes(b)).any(-1)
    return np.where(nan, np.nan, g)


def clip_to_image(boxes, width: float, height: float) -> np.ndarray:
    """Intersect xywh boxes with the image [0, W) x [0, H); a box fully outside gets zero size."""
    b = xywh_to_xyxy(boxes)
    x1 = np.clip(b[..., 0], 0, width)
    y1 = np.clip(b[..., 1], 0, height)
    x2 = np.clip(b[..., 2], 0, width)
    y2 = np.clip(b[..., 3], 0, height)
    return np.stack([x1, y1, np.maximum(x2 - x1, 0), np.maximum(y2 - y1, 0)], axis=-1)


def is_valid(boxes) -> np.ndarray:
    """True where a box is finite with positive width and height."""
    b = as_boxes(boxes)
    return np.isfinite(b).all(-1) & (b[..., 2] > 0) & (b[..., 3] > 0)


def centre_distance(a, b) -> np.ndarray:
    ca, cb = xywh_to_cxcywh(a)[..., :2], xywh_to_cxcywh(b)[..., :2]
    return np.linalg.norm(ca - cb, axis=-1)
