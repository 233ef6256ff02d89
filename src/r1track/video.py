"""Annotated video output: frames with the tracked box drawn, written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from r1track.errors import DataError

# codec per container: .webm (VP8) plays in every browser, .mp4 (MPEG-4 part 2) in desktop players.
# (For .webm OpenCV prints that the container has no tag for the codec; the VP8 stream is written all the same.)
FOURCC = {".webm": "VP80", ".mp4": "mp4v", ".avi": "MJPG"}


def write_annotated(
    frames: Iterable[np.ndarray],
    boxes,
    out_path: str | Path,
    fps: float = 30,
    color: tuple[int, int, int] = (0, 255, 0),
    labels: Sequence[str] | None = None,
    overwrite: bool = False,
    thickness: int = 2,
) -> Path:
    """Write RGB ``frames`` with their xywh ``boxes`` (one per frame; NaN rows draw nothing) as a video:
    the codec follows the suffix (``FOURCC``; ``mp4v`` for others). ``color`` is RGB; ``labels`` is
    optional text per frame (drawn top left).

    The video is written under a temporary name in the same folder and renamed when complete, so a
    crash never leaves a truncated file under ``out_path``; an existing file is kept unless
    ``overwrite``. Returns the path written.
    """
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise DataError(out_path, "exists already (pass overwrite / --overwrite to replace it)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if labels is not None and len(labels) != len(boxes):
        raise ValueError(f"{len(labels)} labels for {len(boxes)} boxes")
    tmp = out_path.with_name(f".{out_path.stem}.{os.getpid()}.tmp{out_path.suffix or '.mp4'}")
    bgr = tuple(int(c) for c in color[::-1])
    fourcc = cv2.VideoWriter_fourcc(*FOURCC.get(out_path.suffix.lower(), "mp4v"))  # type: ignore[attr-defined]
    writer, n = None, 0
    try:
        for i, frame in enumerate(frames):
            if i >= len(boxes):
                raise ValueError(f"more frames than boxes ({len(boxes)})")
            frame = np.asarray(frame)
            h, w = frame.shape[:2]
            if writer is None:
                writer = cv2.VideoWriter(str(tmp), fourcc, float(fps), (w, h))
                if not writer.isOpened():
                    raise DataError(out_path, "the video writer cannot be opened (codec unavailable?)")
                size = (w, h)
            elif (w, h) != size:
                # VideoWriter silently drops frames of another size: resize so every frame is kept
                frame = cv2.resize(frame, size)
                h, w = frame.shape[:2]
            image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            _draw(image, boxes[i], bgr, thickness, labels[i] if labels is not None else None)
            writer.write(image)
            n += 1
        if n == 0:
            raise ValueError("no frames to write")
        if n != len(boxes):
            raise ValueError(f"{n} frames for {len(boxes)} boxes")
        writer.release()
        writer = None
        os.replace(tmp, out_path)
    finally:
        if writer is not None:
            writer.release()
        if tmp.exists():
            tmp.unlink()
    return out_path


def draw_box(frame: np.ndarray, box, color: tuple[int, int, int] = (0, 255, 0), thickness: int = 2) -> np.ndarray:
    """A copy of the RGB ``frame`` with the xywh ``box`` drawn (RGB ``color``) as in the annotated videos."""
    image = np.array(frame, dtype=np.uint8, copy=True)
    _draw(image, np.asarray(box, dtype=np.float64).reshape(4), tuple(int(c) for c in color), thickness, None)
    return image


def _draw(image: np.ndarray, box: np.ndarray, bgr, thickness: int, label: str | None) -> None:
    if np.isfinite(box).all():
        x1, y1 = int(np.floor(box[0] + 0.5)), int(np.floor(box[1] + 0.5))
        x2, y2 = int(np.floor(box[0] + box[2] + 0.5)) - 1, int(np.floor(box[1] + box[3] + 0.5)) - 1
        cv2.rectangle(image, (x1, y1), (max(x2, x1), max(y2, y1)), bgr, thickness)
    if label:
        cv2.putText(image, str(label), (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, str(label), (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
