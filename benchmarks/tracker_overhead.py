"""Frames/s of the MLLM tracker without the model: crop, resize, encode, prompt, parse, map back.

Runs ``MLLMTracker.prepare`` / ``commit`` on 640x480 frames with 336-px crops, one CPU core, plus the
backend's image hand-off ("encode"): PIL images for the transformers backend, base64 data URLs for
the openai backend (JPEG, its default, and PNG). The model is excluded by definition, so the reply is
built here from the request's ground truth (``meta["truth"]``, written with the family's encoding)
outside the timed section.

    PYTHONPATH=src .venv/bin/python benchmarks/tracker_overhead.py [--frames 600] [--family qwen2.5-vl]

Target: >= 300 frames/s per core.
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from r1track.backends.base import Backend, fill_images, to_pil
from r1track.backends.openai import to_openai_messages
from r1track.families import get_family
from r1track.prompts import format_box
from r1track.trackers.mllm import MLLMTracker


class _Excluded(Backend):
    """Stands where the model would; never called (the benchmark constructs the replies)."""

    wants_ground_truth = True

    def generate(self, requests):
        raise RuntimeError("the model is excluded from this benchmark")


def _frames(n: int, rng: np.random.Generator):
    """A textured 640x480 background with a square moving across it, and its true boxes."""
    background = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (7, 7), 0)
    t = np.arange(n)
    boxes = np.stack([200 + 120 * np.sin(t / 25), 150 + 80 * np.cos(t / 31), 60 + 10 * np.sin(t / 17),
                      50 + 8 * np.cos(t / 13)], axis=1)
    frames = []
    for x, y, w, h in boxes:
        f = background.copy()
        cv2.rectangle(f, (int(x), int(y)), (int(x + w) - 1, int(y + h) - 1), (250, 30, 30), -1)
        frames.append(f)
    return frames, boxes


# the backend's hand-off of a request's images: what runs between the tracker and the model
ENCODERS = {
    "none": None,
    "transformers (PIL)": lambda request: fill_images(request, to_pil),
    "openai (JPEG URLs)": lambda request: to_openai_messages(request, "jpeg"),
    "openai (PNG URLs)": lambda request: to_openai_messages(request, "png"),
}


def run(n: int, family: str, prompt: str, three_image: bool, thinking: bool, encode=None) -> dict:
    rng = np.random.default_rng(0)
    frames, boxes = _frames(n, rng)
    fam = get_family(family)
    tracker = MLLMTracker(_Excluded(), family=family, prompt=prompt, three_image=three_image, thinking=thinking)
    tracker.truth = boxes
    tracker.init(frames[0], boxes[0])
    prepare = commit = 0.0
    for i in range(1, n):
        t0 = time.perf_counter()
        request = tracker.prepare(frames[i])
        if encode is not None:
            encode(request)
        t1 = time.perf_counter()
        answer = format_box(fam.encode(request.meta["truth"], request.meta["image_size"]))
        reply = f"<think>...</think><answer>{answer}</answer>" if thinking else answer
        t2 = time.perf_counter()
        tracker.commit(reply)
        t3 = time.perf_counter()
        prepare += t1 - t0
        commit += t3 - t2
    total = prepare + commit
    return {"frames": n - 1, "fps": (n - 1) / total, "prepare_ms": 1e3 * prepare / (n - 1),
            "commit_ms": 1e3 * commit / (n - 1), "failures": tracker.failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--family", default="qwen2.5-vl")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"MLLM tracker overhead, 640x480 frames, 336-px crops, 1 core, {args.frames - 1} frames, {args.family}")
    prompts = [
        ("current prompt", dict(prompt="current", three_image=False, thinking=False)),
        ("current + thinking", dict(prompt="current", three_image=False, thinking=True)),
        ("three-image", dict(prompt="current", three_image=True, thinking=False)),
    ]
    for encoder, encode in ENCODERS.items():
        print(f"image hand-off: {encoder}")
        for label, kw in prompts:
            r = run(args.frames, args.family, encode=encode, **kw)
            print(f"  {label:20s} {r['fps']:8.1f} frames/s   prepare+encode {r['prepare_ms']:.3f} ms   "
                  f"commit {r['commit_ms']:.3f} ms   failures {r['failures']}")


if __name__ == "__main__":
    main()
