"""GOT-10k val scoring speed: r1track's score_got10k against the got10k toolkit's report, same files.

Generates a GOT-10k-val-sized result set (180 sequences x 120 frames x 3 runs by default) in a temp
folder, scores it with both, checks the numbers are identical (1e-9) and prints the time ratio
(target: r1track >= 10x faster). Usage:

    cd /work/main && PYTHONPATH=src .venv/bin/python benchmarks/metrics_speed.py [--seqs 180 --frames 120]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import cv2
import numpy as np

from r1track import metrics, results
from r1track.datasets.base import Sequence


def generate(root: Path, n_seqs: int, n_frames: int, runs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    split = root / "val"
    split.mkdir(parents=True)
    names = [f"GOT-10k_Val_{i + 1:06d}" for i in range(n_seqs)]
    (split / "list.txt").write_text("\n".join(names) + "\n")
    tracker_dir = root / "results" / "GOT-10k" / "bench"
    ok, jpg = cv2.imencode(".jpg", np.zeros((36, 64, 3), np.uint8))
    seqs = []
    for name in names:
        folder = split / name
        folder.mkdir()
        w, h = 640, 360
        centre = np.cumsum(rng.normal(0, 4, (n_frames, 2)), 0) + [w / 2, h / 2]
        size = np.abs(rng.normal([120, 80], 20, (n_frames, 2)))
        gt = np.round(np.column_stack([centre - size / 2, size]), 4)
        cover = rng.integers(0, 9, n_frames)
        cover[0] = 8
        np.savetxt(folder / "groundtruth.txt", gt, fmt="%.4f", delimiter=",")
        for label, values in (("cover", cover), ("absence", cover == 0), ("cut_by_image", cover < 0)):
            np.savetxt(folder / f"{label}.label", values.astype(int), fmt="%d")
        (folder / "meta_info.ini").write_text(
            f"[METAINFO]\nobject_class: c{rng.integers(5)}\nmotion_class: m{rng.integers(3)}\n"
            f"resolution: ({w}, {h})\n")
        frames = [folder / f"{i + 1:08d}.jpg" for i in range(n_frames)]
        for f in frames:
            f.write_bytes(jpg.tobytes())  # the toolkit only lists the frames
        preds = [gt + rng.normal(0, 12, gt.shape) for _ in range(runs)]
        for p in preds:
            p[0] = gt[0]
        results.write_got10k(tracker_dir, name, preds, [rng.uniform(0.01, 0.1, n_frames)] * runs)
        seqs.append(Sequence(name, frames, gt, meta={"resolution": (w, h), "cover": cover, "split": "val",
                                                     "object_class": "x", "motion_class": "y"}))
    return seqs, tracker_dir


def timed(fn, repeat):
    """Best wall-clock and best CPU (process) time of ``repeat`` calls, and the last result.

    CPU time is printed too because a shared machine makes wall-clock times noisy."""
    wall, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return (wall, cpu), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", type=int, default=180)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = ap.parse_args()
    from got10k.experiments import ExperimentGOT10k

    class NoPlot(ExperimentGOT10k):
        def plot_curves(self, *a, **k):  # the toolkit's report also saves a 300-dpi plot
            pass

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        seqs, tracker_dir = generate(root, args.seqs, args.frames, args.runs)
        print(f"generated {args.seqs} sequences x {args.frames} frames x {args.runs} runs "
              f"in {time.perf_counter() - t0:.1f} s")

        def toolkit(cls):
            exp = cls(str(root), subset="val", result_dir=str(root / "results"),
                      report_dir=str(root / "reports"))
            return exp.report(["bench"])["bench"]

        t_ours, ours = timed(lambda: metrics.score_got10k(seqs, tracker_dir), 2 * args.repeat)
        try:
            from r1track.datasets import got10k as reader
            t_load_score, _ = timed(lambda: metrics.score_got10k(reader.load(root, "val"), tracker_dir),
                                    args.repeat)
        except ImportError:
            t_load_score = None
        devnull = open(os.devnull, "w")
        stdout, sys.stdout = sys.stdout, devnull  # the toolkit prints a line per tracker/plot
        try:
            t_kit, kit = timed(lambda: toolkit(ExperimentGOT10k), max(1, args.repeat - 1))
            t_kit_np, _ = timed(lambda: toolkit(NoPlot), max(1, args.repeat - 1))
        finally:
            sys.stdout = stdout
            devnull.close()

    o, k = ours["overall"], kit["overall"]
    print(f"r1track : AO {o['ao']:.10f}  SR0.5 {o['sr50']:.10f}  SR0.75 {o['sr75']:.10f}  "
          f"speed {o['speed_fps']:.6f} fps")
    print(f"got10k  : AO {k['ao']:.10f}  SR0.5 {k['sr']:.10f}  SR0.75 {k['succ_curve'][75]:.10f}  "
          f"speed {k['speed_fps']:.6f} fps")
    diffs = [abs(o["ao"] - k["ao"]), abs(o["sr50"] - k["sr"]), abs(o["speed_fps"] - k["speed_fps"]),
             float(np.max(np.abs(np.array(o["success_curve"]) - k["succ_curve"])))]
    for name, s in ours["sequences"].items():
        diffs += [abs(s["ao"] - kit["seq_wise"][name]["ao"]), abs(s["sr50"] - kit["seq_wise"][name]["sr"]),
                  abs(s["speed_fps"] - kit["seq_wise"][name]["speed_fps"])]
    same = max(diffs) <= 1e-9
    print(f"identical to 1e-9: {same} (max abs difference {max(diffs):.2e})")

    def line(what, t):
        print(f"{what:<38}: wall {t[0] * 1000:8.1f} ms   cpu {t[1] * 1000:8.1f} ms")

    line("r1track score_got10k", t_ours)
    if t_load_score is not None:
        line("r1track GOT-10k reader + score_got10k", t_load_score)
    line("got10k report (with its plot)", t_kit)
    line("got10k report (plot skipped)", t_kit_np)
    for what, kit_t in (("report", t_kit), ("report without its plot", t_kit_np)):
        print(f"speed-up vs {what:<24}: wall {kit_t[0] / t_ours[0]:5.1f}x   cpu {kit_t[1] / t_ours[1]:5.1f}x"
              "   (target >= 10x)")
    if t_load_score is not None:
        print(f"speed-up of reader + score vs report without plot: wall {t_kit_np[0] / t_load_score[0]:5.1f}x"
              f"   cpu {t_kit_np[1] / t_load_score[1]:5.1f}x")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
