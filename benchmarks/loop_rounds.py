"""Where closed-loop GRPO's boxes start to grow: every round's model of a ``reproduce_nano.py`` run.

    PYTHONPATH=src .venv/bin/python benchmarks/loop_rounds.py --work W [--seeds 0 1 2] [--sets val real mot]

Tracks each evaluation set of the pipeline (``Pipeline.evaluation_sets``: ``val`` is pasted from the
training part; the held-out sets only describe, they choose nothing here) with the SFT model and every
closed-loop round's model, and prints AO and the drift diagnostics (share of frames lost, median
predicted / true box area) per round, and the real sets pooled by frame (with ``real`` and ``mot``). Results
go to ``W/results-rounds/<set>/<model>`` (resumed). Stopping each run at its round with the highest
validation AO is the pipeline's ``--stop val``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from reproduce_nano import Pipeline, drift_diagnostics, pool_by_frame, recorded_settings  # noqa: E402

from r1track import evaluation  # noqa: E402
from r1track.metrics import score_got10k  # noqa: E402
from r1track.trackers import tracker_factory  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="a reproduce_nano.py work folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sets", nargs="+", default=["val", "real"])
    args = parser.parse_args()
    work = args.work.resolve()
    runs = work / "runs"
    pipeline = Pipeline.from_settings(work, recorded_settings(work), threads=2)
    models = {"sft-real": runs / "sft-real" / "model"}
    for s in args.seeds:
        models.update({f"loop-seed{s}-r{r}": runs / f"grpo-loop-seed{s}-r{r}" / "model"
                       for r in range(1, pipeline.loop_rounds + 1)})
    pooled = {"real", "mot"} <= set(args.sets)
    print(f"{'model':<16}" + "".join(f"{f'{name}: AO / lost / area':>30}" for name in args.sets)
          + (f"{'real+mot AO':>14}" if pooled else ""))
    for name, model in models.items():
        cells, overall = [], {}
        factory = tracker_factory(str(model), device="cpu", max_new_tokens=24)  # loads the model once
        for set_name in args.sets:
            seqs = pipeline.sequences(set_name)
            out = work / "results-rounds" / set_name / name
            evaluation.run(factory, seqs, out, "got10k", batch_size=40, progress=False)
            overall[set_name] = score_got10k(seqs, out)["overall"]
            d = drift_diagnostics(seqs, out)
            cells.append(f"{overall[set_name]['ao']:.3f} / {d['lost_share']:.2f} / {d['median_area_ratio']:.2f}")
        if pooled:  # as reproduce_nano.py pools them
            overall["real+mot"] = pool_by_frame([overall["real"], overall["mot"]])
            cells.append(f"{overall['real+mot']['ao']:.3f}")
        print(f"{name:<16}" + "".join(f"{c:>30}" for c in cells[:len(args.sets)]) + "".join(
            f"{c:>14}" for c in cells[len(args.sets):]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
