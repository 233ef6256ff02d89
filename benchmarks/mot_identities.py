"""Where trackers fail on a MOT video's pedestrians: per identity, from ``r1track eval`` result folders.

    PYTHONPATH=src .venv/bin/python benchmarks/mot_identities.py --video ../shared/data/real/mot/TUD-Stadtmitte \
        --results W/results-mot --trackers static kcf sft-real grpo-loop-seed1

For each identity: its box's aspect ratio (height / width) and width inside the tracker's search crop
(``--crop-size`` px for a square ``--search-factor`` x sqrt(w h) region, as the MLLM tracker crops), then
per tracker (with ``--trackers``) the mean IoU over frames 1-4 (the target has barely moved: a static box
scores high there), AO over all frames, and the share of frames on another pedestrian (``drift_diagnostics``);
then per tracker the whole video: IoU 1-4 averaged over identities, AO, shares of frames lost (IoU 0) and on
another pedestrian, and the median predicted-to-true box area.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from reproduce_nano import drift_diagnostics  # noqa: E402

from r1track import datasets  # noqa: E402
from r1track.metrics import score_got10k  # noqa: E402
from r1track.training.pairs import present_frames  # noqa: E402


def early_iou(seq, boxes: np.ndarray, frames: range = range(1, 5)) -> float:
    from r1track.boxes import iou

    shown = present_frames(seq)
    ok = [k for k in frames if k < len(boxes) and shown[k]]
    return float(np.mean(iou(boxes[ok], seq.gt[ok]))) if ok else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, required=True, help="a MOTChallenge video folder")
    parser.add_argument("--results", type=Path, help="r1track eval's results folder")
    parser.add_argument("--trackers", nargs="*", default=[], help="result folders' names (none: the boxes only)")
    parser.add_argument("--crop-size", type=int, default=112)
    parser.add_argument("--search-factor", type=float, default=4.0)
    args = parser.parse_args()
    if args.trackers and args.results is None:
        parser.error("--trackers needs --results")
    seqs = datasets.load("mot", args.video)
    head = f"{'identity':<20}{'h/w':>5}{'w in crop':>10}" + "".join(
        f"{f'{t}: IoU 1-4 / AO / on another':>44}" for t in args.trackers)
    print(head)
    early: dict[str, list[float]] = {t: [] for t in args.trackers}  # per tracker, per identity
    for seq in seqs:
        w, h = seq.gt[0][2:]
        cells = []
        for t in args.trackers:
            folder = args.results / t
            boxes = np.loadtxt(folder / seq.name / f"{seq.name}_001.txt", delimiter=",", ndmin=2)
            ao = score_got10k([seq], folder)["overall"]["ao"]
            on_other = drift_diagnostics([seq], folder, others=seqs)["switched_share"]
            early[t].append(early_iou(seq, boxes))
            cells.append(f"{early[t][-1]:.2f} / {ao:.3f} / {on_other:.2f}")
        in_crop = w * args.crop_size / (args.search_factor * np.sqrt(w * h))
        print(f"{seq.name:<20}{h / w:>5.1f}{in_crop:>10.1f}" + "".join(f"{c:>44}" for c in cells))
    aspect = np.median([s.gt[0][3] / s.gt[0][2] for s in seqs])
    print(f"median h/w of the {len(seqs)} identities' first boxes: {aspect:.1f}")
    for t in args.trackers:  # the video as a whole: frames pooled, IoU 1-4 averaged over identities
        folder = args.results / t
        d = drift_diagnostics(seqs, folder)
        print(f"{t}: mean IoU 1-4 {np.mean(early[t]):.2f}, AO {score_got10k(seqs, folder)['overall']['ao']:.3f}, lost "
              f"{d['lost_share']:.2f}, on another {d['switched_share']:.2f}, median area {d['median_area_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
