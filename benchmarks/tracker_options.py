"""Which tracker options (``MLLMTracker`` keywords) help a model, chosen on training data only?

    PYTHONPATH=src .venv/bin/python benchmarks/tracker_options.py --model PATH [--pasted DIR] [--mot]
        [--limit N] [--options "" "scale_smoothing=0.5" "max_scale_change=1.25" "calibrate_factors=3,4" ...]

Tracks the real training sequences of ``scripts/reproduce_nano.py`` (``../shared/data/real/train``
without its held-out part: choosing a tracker setting must not look at held-out data), with ``--mot``
the identities of its training MOT video, and with ``--pasted`` a pasted split (``r1track paste``, e.g.
the pipeline's validation set ``WORK/paste-val``; ``--limit N``: the first N sequences of each set), once
per option set; prints AO per set (and pooled by frame) and how many answers said "absent", side by
side. ``""`` is the checkpoint's own settings. Caveat: the model was trained on pairs from the real training sequences, so their AO
measures a setting on seen objects.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from reproduce_nano import training_sequences  # noqa: E402

from r1track import datasets, evaluation, results  # noqa: E402
from r1track.errors import exit_status  # noqa: E402
from r1track.metrics import score_got10k  # noqa: E402
from r1track.trackers import tracker_factory  # noqa: E402
from r1track.trackers.mllm import TRACKER_OPTIONS  # noqa: E402


def parse_options(text: str) -> dict:
    """``"a=1.5 b=10 c=true d=3,4"`` -> ``{"a": 1.5, "b": 10, "c": True, "d": (3.0, 4.0)}``."""
    words = {"true": True, "false": False}
    out = {}
    for item in text.split():
        key, _, value = item.partition("=")
        try:
            if value.lower() in words:
                out[key] = words[value.lower()]
            elif "," in value:
                out[key] = tuple(float(v) for v in value.split(","))
            else:
                out[key] = int(value) if value.isdigit() else float(value)
        except ValueError:
            raise ValueError(f"{item!r}: expected key=number, key=n1,n2,..., key=true or key=false") from None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--options", nargs="+", default=["", "absent_search_max=3", "absent_search_max=6"],
                        help='option sets, each "key=value key=value" ("" = the checkpoint\'s settings)')
    parser.add_argument("--pasted", type=Path, default=None, help="a pasted split folder")
    parser.add_argument("--mot", action="store_true", help="also the training MOT video's identities")
    parser.add_argument("--limit", type=int, default=None, help="the first N sequences of each set")
    args = parser.parse_args()
    try:
        option_sets = [parse_options(o) for o in args.options]
    except ValueError as e:
        parser.error(f"--options: {e}")
    unknown = sorted({k for o in option_sets for k in o} - set(TRACKER_OPTIONS))
    if unknown:
        parser.error(f"--options: unknown tracker option(s) {', '.join(unknown)}; known: {', '.join(TRACKER_OPTIONS)}")
    sets = training_sequences()
    if not args.mot:
        del sets["mot train"]
    if args.pasted:
        # a paste output folder (its one split) or a split folder
        splits = [s for s in ("train", "val") if (args.pasted / s / "list.txt").is_file()]
        sets["pasted"] = datasets.load("got10k", args.pasted / splits[0] if len(splits) == 1 else args.pasted)
    sets = {name: seqs[: args.limit] for name, seqs in sets.items()}
    width = max(24, *(len(o) + 2 for o in args.options))
    print(f"{'set':<12}" + "".join(f"{o or 'checkpoint':>{width}}" for o in args.options))
    print(f"{'':<12}" + "".join(f"{'AO / absent answers':>{width}}" for _ in args.options))
    pooled = {o: [0.0, 0] for o in args.options}
    with tempfile.TemporaryDirectory() as tmp:
        for name, seqs in sets.items():
            cells = []
            for k, (options, kwargs) in enumerate(zip(args.options, option_sets)):
                factory = tracker_factory(args.model, device="cpu", max_new_tokens=24, **kwargs)
                out = Path(tmp) / f"{name}-{k}"
                evaluation.run(factory, seqs, out, "got10k", repetitions=1, batch_size=40, progress=False)
                overall = score_got10k(seqs, out)["overall"]
                absent = sum(c.absent for c in results.read_answers(out, [s.name for s in seqs]).values())
                pooled[options][0] += overall["ao"] * overall["num_frames"]
                pooled[options][1] += overall["num_frames"]
                cells.append(f"{overall['ao']:.3f} / {absent}")
            print(f"{name:<12}" + "".join(f"{c:>{width}}" for c in cells), flush=True)
    print(f"{'pooled AO':<12}" + "".join(f"{s / max(n, 1):>{width}.3f}" for s, n in pooled.values()))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main, "tracker_options.py"))
