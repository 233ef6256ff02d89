"""Cost of one search crop as the target box grows past the frame (memory and time bounded by the output).

For boxes from 40 px to 1e9 px on a 640x480 frame, the R1-Track search crop (factor 4, 336 px) is cut
with ``r1track.crops.extract``; prints the peak Python-traced memory (numpy and OpenCV arrays) and the
best-of-5 time. Usage:

    PYTHONPATH=src .venv/bin/python benchmarks/crop_cost.py
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

from r1track.crops import crop_region, extract


def measure(frame: np.ndarray, side: float) -> tuple[float, float]:
    h, w = frame.shape[:2]
    crop = crop_region([w / 2 - side / 2, h / 2 - side / 2, side, side], 4.0, 336)
    tracemalloc.start()
    extract(frame, crop)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        extract(frame, crop)
        times.append(time.perf_counter() - start)
    return peak / 2**20, min(times)


SIDES = (40, 400, 4000, 40_000, 1e9)


def main() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    print("| box side (px) | crop side (px) | peak memory | time |")
    print("| --- | --- | --- | --- |")
    for side in SIDES:
        peak, best = measure(frame, side)
        print(f"| {side:g} | {4 * side:g} | {peak:.2f} MiB | {best * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
