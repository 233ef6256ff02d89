"""How far the target moves between frames, measured in search crops: what the tracker's crops show
against what the jittered training crops show.

    PYTHONPATH=src .venv/bin/python benchmarks/target_motion.py [--search-factor 4] [--jitter 0.25]

Per dataset: for every two consecutive frames showing the target, the offset of its centre from the
centre of a search crop cut around the earlier frame's box (side ``search_factor`` x sqrt(w h), as the
MLLM tracker cuts it after a right answer), per axis, as a share of the crop side; quantiles and the share
above 0.1. The last row is the uniform training jitter (``U(-jitter, jitter)`` per axis, exact quantiles).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from r1track import datasets  # noqa: E402
from r1track.training.pairs import present_frames  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real"
QUANTILES = (0.5, 0.9, 0.99)


def offsets(sequences, search_factor: float) -> np.ndarray:
    """Per-axis |centre motion| / crop side over consecutive frames showing the target, all sequences."""
    out = []
    for seq in sequences:
        shown = present_frames(seq)
        for k in range(1, len(seq.gt)):
            if shown[k - 1] and shown[k]:
                a, b = seq.gt[k - 1], seq.gt[k]
                side = search_factor * np.sqrt(a[2] * a[3])
                out.append(np.abs((b[:2] + b[2:] / 2) - (a[:2] + a[2:] / 2)) / side)
    return np.concatenate(out) if out else np.zeros(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search-factor", type=float, default=4.0)
    parser.add_argument("--jitter", type=float, default=0.25, help="the training crops' uniform jitter")
    args = parser.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"{REAL} is missing: this benchmark measures the real sequences there")
    sets = {
        "real single-object (27 sequences)": datasets.load("got10k", REAL / "train", "train"),
        "MOT PETS09-S2L1 (training identities)": datasets.load("mot", REAL / "mot" / "PETS09-S2L1"),
        "MOT TUD-Stadtmitte (held-out identities)": datasets.load("mot", REAL / "mot" / "TUD-Stadtmitte"),
    }
    print(f"| frames | offsets | {' | '.join(f'q{q:g}' for q in QUANTILES)} | share > 0.1 |")
    print("| --- | --- |" + " --- |" * (len(QUANTILES) + 1))
    for name, seqs in sets.items():
        o = offsets(seqs, args.search_factor)
        q = np.quantile(o, QUANTILES)
        print(f"| {name} | {len(o)} | {' | '.join(f'{v:.3f}' for v in q)} | {np.mean(o > 0.1):.3f} |")
    q = [args.jitter * v for v in QUANTILES]  # |U(-j, j)| is U(0, j)
    share = max(0.0, 1 - 0.1 / args.jitter)
    print(f"| training jitter U(-{args.jitter:g}, {args.jitter:g}) | - | {' | '.join(f'{v:.3f}' for v in q)} | "
          f"{share:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
