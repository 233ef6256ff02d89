"""Does searching ever wider after "absent" answers in a row help a model re-find a lost target?

    PYTHONPATH=src .venv/bin/python benchmarks/absent_search.py --model PATH [--maxima 1.5 3 6] [--pasted DIR]

Tracks the real training sequences of ``scripts/reproduce_nano.py`` (``../shared/data/real/train``
without its held-out part: choosing a tracker setting must not look at held-out data) and, with
``--pasted``, a pasted split (``r1track paste``), once per ``absent_search_max``; prints AO and how
many answers said "absent" side by side. 1.5 (= ``absent_search_scale``) is the default: one step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from r1track import datasets, evaluation, results  # noqa: E402
from r1track.metrics import score_got10k  # noqa: E402
from r1track.trackers import tracker_factory  # noqa: E402
from reproduce_nano import HELD_OUT, REAL  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--maxima", type=float, nargs="+", default=[1.5, 3.0, 6.0])
    parser.add_argument("--pasted", type=Path, default=None, help="a pasted split folder (first 20 sequences)")
    args = parser.parse_args()
    sets = {"real train": [s for s in datasets.load("got10k", REAL / "train") if s.name not in HELD_OUT]}
    if args.pasted:
        sets["pasted"] = datasets.load("got10k", args.pasted)[:20]
    print(f"{'set':<12}" + "".join(f"{f'max {m:g}: AO / absent':>24}" for m in args.maxima))
    with tempfile.TemporaryDirectory() as tmp:
        for name, seqs in sets.items():
            cells = []
            for m in args.maxima:
                factory = tracker_factory(args.model, device="cpu", max_new_tokens=24, absent_search_max=m)
                out = Path(tmp) / f"{name}-{m}"
                evaluation.run(factory, seqs, out, "got10k", repetitions=1, batch_size=40, progress=False)
                ao = score_got10k(seqs, out)["overall"]["ao"]
                absent = sum(c.absent for c in results.read_answers(out, [s.name for s in seqs]).values())
                answers = sum(len(s) - 1 for s in seqs)
                cells.append(f"{ao:.3f} / {absent:>4} of {answers}")
            print(f"{name:<12}" + "".join(f"{c:>24}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
