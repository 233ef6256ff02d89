"""Scores of several trackers side by side: one comparison table, a JSON file and the toolkits' plots.

GOT-10k protocol: AO, SR0.50, SR0.75 and FPS (``r1track.metrics.score_got10k``), success plot over
101 IoU thresholds. One-pass protocol: AUC, precision (20 px), normalised precision (0.20) and FPS
(``r1track.metrics.score_ope``), success, precision and normalised precision plots. Legends carry the
score as the toolkits print it ("CSRT [0.512]"). Breakdowns per object/motion class (GOT-10k) or per
attribute (one-pass) come from the same scoring, restricted to the sequences of each group.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from r1track import datasets, metrics, results
from r1track.atomic import atomic_write_bytes, atomic_write_text
from r1track.errors import DataError, R1TrackError
from r1track.manifest import MANIFEST

PROTOCOLS = ("got10k", "ope")

# (column title, key in "overall", format)
COLUMNS = {
    "got10k": [
        ("AO", "ao", "{:.3f}"),
        ("SR0.50", "sr50", "{:.3f}"),
        ("SR0.75", "sr75", "{:.3f}"),
        ("FPS", "speed_fps", "{:.2f}"),
    ],
    "ope": [
        ("AUC", "auc", "{:.3f}"),
        ("Prec", "precision", "{:.3f}"),
        ("NPrec", "norm_precision", "{:.3f}"),
        ("FPS", "speed_fps", "{:.2f}"),
    ],
}
# share of failed model answers above which a tracker's scores come with a warning
FAILURE_WARNING = 0.05
# the headline score each protocol ranks by
MAIN = {"got10k": "ao", "ope": "auc"}
# breakdown name -> key of the score dict that holds it, per protocol
GROUPS = {"got10k": ("object_classes", "motion_classes"), "ope": ("attributes",)}


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise R1TrackError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")


def tracker_names(results_dir: str | Path, sequences) -> list[str]:
    """The tracker folders of ``results_dir``, sorted: those with a run manifest or with results of
    one of ``sequences`` (hidden folders and strays, such as plots written there, excluded)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise DataError(results_dir, "results folder is missing")
    return sorted(
        p.name
        for p in results_dir.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and ((p / MANIFEST).is_file() or any(results.has_results(p, s.name) for s in sequences))
    )


def _folder(results_dir: Path, name: str) -> str:
    """The folder of the tracker ``name`` as typed: exact, else the one folder equal ignoring case
    (results of ``eval --tracker csrt`` by r1track versions that wrote ``CSRT/``)."""
    if (results_dir / name).is_dir():
        return name
    same = (
        [p.name for p in results_dir.iterdir() if p.is_dir() and p.name.lower() == name.lower()]
        if results_dir.is_dir()
        else []
    )
    if len(same) != 1:
        raise DataError(results_dir / name, f"no results for tracker {name!r}")
    return same[0]


def report(sequences, protocol: str, results_dir: str | Path, trackers: list[str] | None = None) -> dict:
    """Score each tracker of ``results_dir`` (or just ``trackers``) over ``sequences``.

    Returns ``{tracker: score dict}``, the score dicts of ``metrics.score_got10k`` / ``score_ope``
    (``{"overall": {...}, "sequences": {name: {...}}, ...}``) with ``"answers"`` (``answer_summary``)
    for trackers that ask a model."""
    _check_protocol(protocol)
    results.check_names(s.name for s in sequences)
    results_dir = Path(results_dir)
    names = tracker_names(results_dir, sequences) if trackers is None else [_folder(results_dir, t) for t in trackers]
    if not names:
        raise R1TrackError(f"{results_dir}: no tracker results to report")
    score = metrics.score_got10k if protocol == "got10k" else metrics.score_ope
    out = {}
    for name in names:
        out[name] = score(sequences, results_dir / name)
        if (answers := answer_summary(sequences, results_dir / name)) is not None:
            out[name]["answers"] = answers
    return out


def answer_summary(sequences, tracker_dir: str | Path) -> dict | None:
    """The model's answer counts over ``sequences`` (``results.AnswerCounts`` fields and
    ``failure_rate``, overall and per sequence), or None for trackers that ask no model."""
    counts = results.read_answers(tracker_dir, [s.name for s in sequences])
    if not counts:
        return None
    total = results.AnswerCounts(
        *(sum(getattr(c, f.name) for c in counts.values()) for f in fields(results.AnswerCounts))
    )
    row = lambda c: {**asdict(c), "failure_rate": c.failure_rate}
    return {**row(total), "sequences": {name: row(c) for name, c in counts.items()}}


def print_answers(summaries: dict) -> None:
    """One line per tracker with its answer failures; a warning above ``FAILURE_WARNING``."""
    for name, s in summaries.items():
        if s is None:
            continue
        print(
            f"{name}: {s['unparsable']} of {s['answers']} answers unparsable, {s['rejected']} rejected "
            f"({s['failure_rate']:.1%} failed), {s['absent']} said absent"
        )
        if s["failure_rate"] > FAILURE_WARNING:
            print(
                f"WARNING: {name}: {s['failure_rate']:.1%} of the model's answers gave no usable box (the "
                "tracker kept its previous box): the scores measure these failures, not only the model",
                file=sys.stderr,
            )


def _ranked(scores: dict, protocol: str) -> list[str]:
    key = MAIN[protocol]

    def rank(name):
        v = scores[name]["overall"].get(key)
        return -v if v is not None and not math.isnan(v) else math.inf

    return sorted(scores, key=lambda n: (rank(n), n))


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def format_table(scores: dict, protocol: str) -> str:
    """One comparison table, best tracker first (by AO for GOT-10k, AUC for one-pass)."""
    _check_protocol(protocol)
    cols = COLUMNS[protocol]
    header = ["Tracker"] + [c[0] for c in cols]
    rows = [
        [name] + [_cell(scores[name]["overall"].get(k), f) for _, k, f in cols] for name in _ranked(scores, protocol)
    ]
    return _table(header, rows)


def format_groups(scores: dict, protocol: str, group: str) -> str:
    """One table per breakdown: a row per class/attribute (with its sequence count), a column per tracker
    holding the headline score (AO or AUC) on that group's sequences."""
    _check_protocol(protocol)
    key = MAIN[protocol]
    names = _ranked(scores, protocol)
    labels = sorted({g for n in names for g in scores[n].get(group, {})})
    if not labels:
        return f"(no {group.replace('_', ' ')} in this dataset)"
    header = [f"{group.replace('_', ' ')} ({key.upper()})", "seqs"] + names
    rows = []
    for label in labels:
        entries = [scores[n].get(group, {}).get(label) for n in names]
        count = next((e["num_sequences"] for e in entries if e), 0)
        rows.append([label, str(count)] + [_cell(e.get(key) if e else None, "{:.3f}") for e in entries])
    return _table(header, rows)


def to_json(scores: dict) -> dict:
    """The scores as plain JSON values (numpy arrays to lists, NaN to null)."""

    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple, np.ndarray)):
            return [clean(v) for v in x]
        if isinstance(x, (np.integer,)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            return None if math.isnan(x) else float(x)
        return x

    return clean(scores)


def write_json(scores: dict, out: str | Path) -> Path:
    """``{tracker: {"overall": {...}, "sequences": {name: {...}}, ...}}``, written atomically."""
    out = Path(out)
    atomic_write_text(out, json.dumps(to_json(scores), indent=2, allow_nan=False) + "\n")
    return out


# x axis, y key, headline key, title, axis label, file name
def _plot_specs(protocol: str) -> list[tuple]:
    if protocol == "got10k":
        return [
            (metrics.GOT10K_THRESHOLDS, "success_curve", "ao", "Success plot", "Overlap threshold", "success_plot.png")
        ]
    return [
        (metrics.OPE_IOU_THRESHOLDS, "success_curve", "auc", "Success plot", "Overlap threshold", "success_plot.png"),
        (
            metrics.OPE_PIXEL_THRESHOLDS,
            "precision_curve",
            "precision",
            "Precision plot",
            "Location error threshold (px)",
            "precision_plot.png",
        ),
        (
            metrics.OPE_NORM_THRESHOLDS,
            "norm_precision_curve",
            "norm_precision",
            "Normalized precision plot",
            "Normalized location error threshold",
            "norm_precision_plot.png",
        ),
    ]


def plot_curves(scores: dict, protocol: str, out_dir: str | Path) -> list[Path]:
    """Write the protocol's plots as PNGs in ``out_dir`` (one line per tracker, best first); returns paths."""
    _check_protocol(protocol)
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = _ranked(scores, protocol)
    paths = []
    for x, curve_key, score_key, title, xlabel, filename in _plot_specs(protocol):
        fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
        try:
            for name in names:
                overall = scores[name]["overall"]
                curve = overall.get(curve_key)
                if curve is None:
                    continue
                y = np.array([np.nan if v is None else v for v in curve], dtype=np.float64)
                ax.plot(x[: len(y)], y, label=legend_label(name, overall.get(score_key)), linewidth=2)
            ax.set(
                title=f"{title} ({protocol_label(protocol)})",
                xlabel=xlabel,
                ylabel="Success rate" if curve_key == "success_curve" else "Precision",
                xlim=(x[0], x[-1]),
                ylim=(0, 1.01),
            )
            ax.grid(True, alpha=0.3)
            ax.legend(loc="lower left" if curve_key == "success_curve" else "lower right", fontsize=8)
            fig.tight_layout()
            path = out_dir / filename
            _save_atomic(fig, path)
            paths.append(path)
        finally:
            plt.close(fig)
    return paths


def legend_label(name: str, value: float | None) -> str:
    """The toolkits' legend entry: the tracker's name and its score, "CSRT [0.512]"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return name
    return f"{name} [{value:.3f}]"


def protocol_label(protocol: str) -> str:
    return "GOT-10k" if protocol == "got10k" else "OPE"


def _save_atomic(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=datasets.DATASETS)
    parser.add_argument("--root", required=True, type=Path, help="dataset root folder")
    parser.add_argument("--split", default=None, help="dataset split (e.g. val)")
    datasets.add_options(parser)
    parser.add_argument("--results", required=True, type=Path, help="results dir holding one folder per tracker")
    parser.add_argument("--trackers", default=None, help="comma-separated tracker folders (default: all)")
    parser.add_argument("--sequences", default=None, help="comma-separated sequence names (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N sequences")
    parser.add_argument("--json", type=Path, default=None, help="write all scores to this JSON file")
    parser.add_argument("--plots", type=Path, default=None, help="write the plots (PNG) to this folder")
    parser.add_argument("--by-class", action="store_true", help="GOT-10k: AO per object and motion class")
    parser.add_argument("--by-attribute", action="store_true", help="one-pass: AUC per attribute")


def run(args: argparse.Namespace) -> int:
    protocol = datasets.protocol(args.dataset)
    sequences = datasets.select(datasets.load_from_args(args), args.sequences, args.limit)
    if not sequences:
        raise R1TrackError(f"no sequences in {args.root}")
    trackers = [t.strip() for t in args.trackers.split(",") if t.strip()] if args.trackers else None
    scores = report(sequences, protocol, args.results, trackers)
    print(format_table(scores, protocol))
    print_answers({name: s.get("answers") for name, s in scores.items()})
    if args.by_class:
        if protocol != "got10k":
            raise R1TrackError("--by-class is for the GOT-10k protocol; use --by-attribute")
        for group in GROUPS["got10k"]:
            print()
            print(format_groups(scores, protocol, group))
    if args.by_attribute:
        if protocol != "ope":
            raise R1TrackError("--by-attribute is for one-pass benchmarks; use --by-class for GOT-10k")
        print()
        print(format_groups(scores, protocol, "attributes"))
    if args.json:
        print(f"scores written to {write_json(scores, args.json)}")
    if args.plots:
        for path in plot_curves(scores, protocol, args.plots):
            print(f"plot written to {path}")
    return 0
