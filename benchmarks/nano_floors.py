"""The figures behind tests/test_nano.py's floors for the packaged nano model, printed side by side.

    PYTHONPATH=src .venv/bin/python benchmarks/nano_floors.py

Synthetic: the 8 held-out sequences of the test (seed 20, 40 frames), the model and a static box, and
the mean IoU of the first-frame boxes grounded from the text descriptions. Real (needs
../shared/data/real): the first 40 frames of the held-out real sequences, the model, a static box, KCF.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from r1track import datasets  # noqa: E402
from r1track.metrics import got10k_iou  # noqa: E402
from r1track.synth import generate  # noqa: E402
from r1track.trackers import tracker_factory  # noqa: E402
from r1track.trackers.baselines import KCF, Static  # noqa: E402
from r1track.training.callbacks import track_sequences  # noqa: E402
from test_nano import REAL_FRAMES, REAL_HELD_OUT  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real" / "train"


def main() -> int:
    nano = tracker_factory("nano", device="cpu")
    with tempfile.TemporaryDirectory() as root:
        generate(root, sequences=8, frames=40, seed=20, split="val", progress=False)
        held = datasets.load("got10k", root, "val")
        model, static = track_sequences(nano, held), track_sequences(Static, held)
        ious = []
        for seq in held:
            tracker = nano()
            tracker.init(seq.frame(0), text=seq.language)
            ious.append(got10k_iou(tracker.box[None], seq.gt[:1], seq.meta["resolution"])[0])
    print("| set | nano AO | parse failures | static AO | KCF AO | grounding IoU |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| synthetic, 8 x 40 frames | {model['ao']:.3f} | {model['parse_failures']:.3f} | {static['ao']:.3f} | - "
          f"| {np.mean(ious):.3f} |")
    if REAL.is_dir():
        seqs = datasets.select(datasets.load("got10k", REAL, "train"), ",".join(REAL_HELD_OUT))
        model, static, kcf = (track_sequences(f, seqs, REAL_FRAMES) for f in (nano, Static, KCF))
        print(f"| real held-out, {len(seqs)} x {REAL_FRAMES} frames | {model['ao']:.3f} | "
              f"{model['parse_failures']:.3f} | {static['ao']:.3f} | {kcf['ao']:.3f} | - |")
    else:
        print(f"(real held-out skipped: {REAL} is missing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
