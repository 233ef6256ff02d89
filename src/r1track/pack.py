"""Submission packs for the evaluation servers (GOT-10k test, TrackingNet) and the command `r1track pack`.

Every sequence must have complete, valid results, else nothing is written; member names are the
checked sequence names (never a path outside the zip's root).
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path
from typing import Iterable

from r1track.atomic import atomic_path
from r1track.errors import DataError, R1TrackError
from r1track.results import check_names, got10k_run_files, got10k_time_file, ope_file, read_got10k, read_table


def _write_zip(out_zip: Path, members: Iterable[tuple[Path, str]], overwrite: bool) -> Path:
    out_zip = Path(out_zip)
    if out_zip.exists() and not overwrite:
        raise R1TrackError(f"{out_zip} already exists; pass --overwrite (overwrite=True) to replace it")
    with atomic_path(out_zip) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, arcname in members:
            zf.write(path, arcname)
    return out_zip


def _raise_incomplete(problems: list[str], total: int, what: str) -> None:
    if problems:
        shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        raise R1TrackError(
            f"{len(problems)} of {total} sequences have missing or bad {what} results, nothing packed: {shown}"
        )


def pack_got10k_test(tracker_dir: str | Path, sequences, out_zip: str | Path, overwrite: bool = False) -> Path:
    """Zip GOT-10k results for the evaluation server: the root holds one folder per sequence with its
    run files and time file. Every sequence must be present and valid, else nothing is written."""
    check_names(seq.name for seq in sequences)
    members, problems = [], []
    for seq in sequences:
        try:
            runs, times = read_got10k(tracker_dir, seq.name, len(seq))
            if times is None:
                raise DataError(got10k_time_file(tracker_dir, seq.name), "time file is missing")
        except DataError as e:
            problems.append(str(e))
            continue
        for f in got10k_run_files(tracker_dir, seq.name):
            members.append((f, f"{seq.name}/{f.name}"))
        members.append((got10k_time_file(tracker_dir, seq.name), f"{seq.name}/{seq.name}_time.txt"))
    _raise_incomplete(problems, len(sequences), "GOT-10k")
    return _write_zip(Path(out_zip), members, overwrite)


def pack_trackingnet(tracker_dir: str | Path, sequences, out_zip: str | Path, overwrite: bool = False) -> Path:
    """Zip TrackingNet results: ``<seq>.txt`` files at the root, every sequence present and finite."""
    check_names(seq.name for seq in sequences)
    members, problems = [], []
    for seq in sequences:
        path = ope_file(tracker_dir, seq.name)
        try:
            read_table(path, len(seq), 4)  # the server cannot score NaN: insist on finite boxes
        except DataError as e:
            problems.append(str(e))
            continue
        members.append((path, path.name))
    _raise_incomplete(problems, len(sequences), "TrackingNet")
    return _write_zip(Path(out_zip), members, overwrite)


# ---------------------------------------------------------------- command `r1track pack`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", required=True, choices=["got10k", "trackingnet"], help="submission format of the evaluation server"
    )
    parser.add_argument("--dataset", required=True, help="dataset name (as `r1track eval` uses)")
    parser.add_argument("--root", required=True, help="dataset root folder")
    parser.add_argument("--split", default="test", help="dataset split (default: test)")
    parser.add_argument("--results", required=True, help="results folder holding <tracker>/")
    parser.add_argument("--tracker", required=True, help="tracker name (sub-folder of --results)")
    parser.add_argument("--out", required=True, help="zip file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing zip")


def run(args: argparse.Namespace) -> int:
    from r1track import datasets

    sequences = datasets.load(args.dataset, args.root, args.split)
    tracker_dir = Path(args.results) / args.tracker
    if not tracker_dir.is_dir():
        raise DataError(tracker_dir, "results folder is missing")
    pack = pack_got10k_test if args.format == "got10k" else pack_trackingnet
    out = pack(tracker_dir, sequences, args.out, overwrite=args.overwrite)
    print(f"packed {len(sequences)} sequences into {out}")
    return 0
