"""Result files of both protocols, atomic writes, and evaluation-server submission zips.

Layouts (see docs/architecture.md):
- GOT-10k protocol: ``<tracker_dir>/<seq>/<seq>_001.txt`` ... (one file per run, ``x,y,w,h`` per frame,
  frame 0 included) and ``<seq>_time.txt`` (one row per frame, one column of seconds per run). The time
  file is written last, so a complete time file marks a complete sequence (used to resume).
- One-pass protocol: ``<tracker_dir>/<seq>.txt`` and ``<tracker_dir>/times/<seq>_time.txt``.

Readers accept ``,``, tab or space delimiters and report bad input as ``DataError(path, message, line)``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

from r1track.errors import DataError, R1TrackError

BOX_FORMAT = "%.3f,%.3f,%.3f,%.3f\n"  # the got10k toolkit's precision
TIME_FORMAT = "%.8f"
_TO_SPACE = str.maketrans(",\t\r", "   ")


# ---------------------------------------------------------------- atomic writes


def atomic_write_bytes(path: str | Path, data: bytes, sync: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    A temporary file in the same folder is renamed over the target (same file system, so the rename is
    atomic); on failure the temporary file is removed and an existing file is left untouched.
    ``sync=False`` skips the fsync, for bulk files whose set is marked complete by a later synced file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        # mkstemp creates 0600 files; results are meant to be shared like any other output
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


# ---------------------------------------------------------------- formatting and parsing


def format_boxes(boxes: np.ndarray) -> str:
    b = np.asarray(boxes, dtype=np.float64)
    return (BOX_FORMAT * len(b)) % tuple(b.ravel()) if len(b) else ""


def format_times(times: np.ndarray) -> str:
    t = np.asarray(times, dtype=np.float64)
    t = t.reshape(len(t), -1)
    row = ",".join([TIME_FORMAT] * t.shape[1]) + "\n"
    return (row * len(t)) % tuple(t.ravel()) if len(t) else ""


def _check_boxes(boxes, what: str) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{what}: boxes must have shape (N, 4), got {b.shape}")
    if not np.isfinite(b).all():
        bad = int(np.flatnonzero(~np.isfinite(b).all(1))[0])
        raise ValueError(f"{what}: box of frame {bad} is not finite ({b[bad].tolist()}); "
                         "a tracker must never return NaN or inf")
    return b


def _check_times(times, what: str) -> np.ndarray:
    """Seconds per frame; NaN means unknown (the toolkit skips it), inf is refused."""
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if np.isinf(t).any():
        raise ValueError(f"{what}: time of frame {int(np.flatnonzero(np.isinf(t))[0])} is infinite")
    return t


def _read_body(path: str | Path, n_rows: int | None, truncate: bool) -> tuple[bytes, int]:
    """The file's bytes without its blank tail, cut to ``n_rows`` lines when asked; row count checked."""
    try:
        with open(path, "rb") as f:
            body = f.read().rstrip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise DataError(path, "file is missing") from None
    n_lines = body.count(b"\n") + 1 if body else 0
    if n_rows is not None and n_lines != n_rows:
        if n_lines < n_rows:
            raise DataError(path, f"has {n_lines} rows, expected {n_rows} (one per frame)", n_lines + 1)
        if not truncate:
            raise DataError(path, f"has {n_lines} rows, expected {n_rows} (one per frame)", n_rows + 1)
        body, n_lines = b"\n".join(body.split(b"\n", n_rows)[:n_rows]), n_rows
    if not n_lines:
        raise DataError(path, "is empty")
    return body, n_lines


def parse_csv_tables(bodies: list[bytes], cols: list[int]) -> list[np.ndarray] | None:
    """Parse several comma-separated numeric tables, table i with exactly ``cols[i]`` values per line,
    in one multi-threaded pass per column count (pyarrow's CSV reader; its float parsing is correctly
    rounded, so values are bit-identical to ``float(text)``).

    Returns None when anything else is there (tabs or spaces, nan or inf, empty fields, ragged or
    blank lines, other text): the caller then takes the general, line-by-line path that accepts every
    delimiter and names the culprit line.
    """
    import pyarrow as pa
    from pyarrow import csv

    out: list[np.ndarray | None] = [None] * len(bodies)
    for c in sorted(set(cols)):
        members = [i for i, k in enumerate(cols) if k == c]
        data = b"\n".join(bodies[i] for i in members)
        if data.translate(None, b"0123456789.-+eE,\r\n"):
            return None
        names = [str(k) for k in range(c)]
        try:
            table = csv.read_csv(
                pa.py_buffer(data),
                read_options=csv.ReadOptions(column_names=names),
                parse_options=csv.ParseOptions(ignore_empty_lines=False),
                convert_options=csv.ConvertOptions(column_types=dict.fromkeys(names, pa.float64())),
            )
        except pa.ArrowInvalid:
            return None
        lines = [bodies[i].count(b"\n") + 1 for i in members]
        if table.num_rows != sum(lines) or any(col.null_count for col in table.columns):
            return None
        values = np.column_stack([col.to_numpy() for col in table.columns])
        for i, end, n in zip(members, np.cumsum(lines), lines):
            out[i] = values[end - n:end]
    return out


def _parse_general(path: Path, body: bytes, n_lines: int, want: int) -> np.ndarray:
    """Any float syntax Python accepts (nan, inf, exponents); names the first bad line."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(path, "is not a text file") from None
    try:  # numpy's C parser; it skips blank lines, hence the shape check
        table = np.loadtxt(io.StringIO(text.replace(",", " ")), dtype=np.float64, comments=None,
                           ndmin=2)
        if table.shape == (n_lines, want):
            return table
    except ValueError:
        pass
    lines = text.split("\n")
    for i, line in enumerate(lines):
        row = line.translate(_TO_SPACE).split()
        if len(row) != want:
            raise DataError(path, f"expected {want} values, found {len(row)}: {line.strip()!r}", i + 1)
        try:
            [float(v) for v in row]
        except ValueError:
            raise DataError(path, f"not a number: {line.strip()!r}", i + 1) from None
    return np.array([line.translate(_TO_SPACE).split() for line in lines], dtype=np.float64)


def read_tables(specs: list[tuple[Path, int | None, int, bool, bool]]) -> list[np.ndarray]:
    """Read several numeric tables at once; each spec is (path, n_rows, n_cols, allow_nan, truncate).

    See ``read_table``; reading together lets one pass parse them all.
    """
    loaded = [_read_body(p, n_rows, truncate) for p, n_rows, _, _, truncate in specs]
    tables = parse_csv_tables([body for body, _ in loaded], [s[2] for s in specs])
    if tables is not None:
        return tables  # nan and inf never pass the fast path
    tables = []
    for (path, _, n_cols, allow_nan, _), (body, n_lines) in zip(specs, loaded):
        fast = parse_csv_tables([body], [n_cols])
        table = fast[0] if fast is not None else _parse_general(Path(path), body, n_lines, n_cols)
        bad = np.isinf(table) if allow_nan else ~np.isfinite(table)
        if bad.any():
            i = int(np.flatnonzero(bad.any(1))[0])
            line = body.split(b"\n")[i].decode("utf-8", "replace")
            raise DataError(path, f"value is not finite: {line.strip()!r}", i + 1)
        tables.append(table)
    return tables


def read_table(path: str | Path, n_rows: int | None, n_cols: int, *, allow_nan: bool = False,
               truncate: bool = False) -> np.ndarray:
    """Read a numeric table (``,``, tab or space separated) as float64 (rows, n_cols).

    Checks the row count when ``n_rows`` is given (``truncate`` cuts longer files to ``n_rows``; blank
    lines at the end are ignored, blank lines inside are errors), the column count, that every value
    is a number and, unless ``allow_nan``, that every value is finite (inf is never allowed). Errors
    name the file and the line.
    """
    return read_tables([(Path(path), n_rows, n_cols, allow_nan, truncate)])[0]


def count_rows(path: Path) -> int | None:
    """Number of non-blank-tail lines, or None if the file is missing (cheap: no parsing)."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    data = data.rstrip()
    return data.count(b"\n") + 1 if data else 0


# ---------------------------------------------------------------- GOT-10k layout


def got10k_run_file(tracker_dir: str | Path, seq_name: str, run: int) -> Path:
    """Path of run ``run`` (1-based)."""
    return Path(tracker_dir) / seq_name / f"{seq_name}_{run:03d}.txt"


def got10k_time_file(tracker_dir: str | Path, seq_name: str) -> Path:
    return Path(tracker_dir) / seq_name / f"{seq_name}_time.txt"


def got10k_run_files(tracker_dir: str | Path, seq_name: str) -> list[Path]:
    """The run files present, in run order (what the toolkit's ``<seq>_[0-9]*.txt`` glob finds)."""
    return _got10k_listing(tracker_dir, seq_name)[0]


def _got10k_listing(tracker_dir: str | Path, seq_name: str, as_str: bool = False
                    ) -> tuple[list, str | Path | None]:
    """(run files in run order, time file or None) from one directory listing (str paths are for
    the scoring hot path, where pathlib's overhead shows)."""
    folder = os.path.join(tracker_dir, seq_name)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return [], None
    pattern = re.compile(re.escape(seq_name) + r"_(\d+)\.txt")
    found = sorted((int(m.group(1)), n) for n in names if (m := pattern.fullmatch(n)))
    time_name = f"{seq_name}_time.txt"
    make = (lambda n: folder + os.sep + n) if as_str else (lambda n: Path(folder) / n)
    return [make(n) for _, n in found], (make(time_name) if time_name in names else None)


def write_got10k(tracker_dir: str | Path, seq_name: str, runs: list[np.ndarray],
                 times: list[np.ndarray]) -> None:
    """Write all runs of one sequence; the time file last, so it marks a complete sequence."""
    if not runs or len(runs) != len(times):
        raise ValueError(f"{seq_name}: need one time array per run, got {len(runs)} runs "
                         f"and {len(times)} time arrays")
    boxes = [_check_boxes(r, f"{seq_name} run {i + 1}") for i, r in enumerate(runs)]
    n = len(boxes[0])
    cols = [_check_times(t, f"{seq_name} run {i + 1}") for i, t in enumerate(times)]
    if any(len(b) != n for b in boxes) or any(len(t) != n for t in cols):
        raise ValueError(f"{seq_name}: every run and time array must have {n} rows")
    time_file = got10k_time_file(tracker_dir, seq_name)
    # an old time file would vouch for a half-rewritten folder: drop it before touching the runs
    with contextlib.suppress(FileNotFoundError):
        time_file.unlink()
    for old in got10k_run_files(tracker_dir, seq_name):
        if int(old.stem.rsplit("_", 1)[1]) > len(boxes):
            old.unlink()  # stale extra runs would be scored by the toolkit's glob
    for i, b in enumerate(boxes):
        atomic_write_text(got10k_run_file(tracker_dir, seq_name, i + 1), format_boxes(b))
    atomic_write_text(time_file, format_times(np.stack(cols, axis=1)))


def read_got10k(tracker_dir: str | Path, seq_name: str, n_frames: int
                ) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Read and validate every run of one sequence.

    Returns ``(runs, times)``: runs are (N, 4) float arrays (no NaN/inf); times is (N, R) (NaN allowed,
    as the toolkit drops it) or None when the time file is missing.
    """
    return read_got10k_many(tracker_dir, [(seq_name, n_frames)])[0]


def read_got10k_many(tracker_dir: str | Path, items: list[tuple[str, int]]
                     ) -> list[tuple[list[np.ndarray], np.ndarray | None]]:
    """``read_got10k`` for many (sequence name, frame count) pairs, parsed in one vectorised pass."""
    specs, layout = [], []
    for seq_name, n_frames in items:
        runs, time_file = _got10k_listing(tracker_dir, seq_name, as_str=True)
        if not runs:
            raise DataError(got10k_run_file(tracker_dir, seq_name, 1), "result file is missing")
        specs += [(f, n_frames, 4, False, False) for f in runs]
        if time_file is not None:
            specs.append((time_file, n_frames, len(runs), True, False))
        layout.append((len(runs), time_file is not None))
    tables, out, at = read_tables(specs), [], 0
    for n_runs, has_time in layout:
        out.append((tables[at:at + n_runs], tables[at + n_runs] if has_time else None))
        at += n_runs + has_time
    return out


def is_complete_got10k(tracker_dir: str | Path, seq_name: str, n_frames: int,
                       repetitions: int) -> bool:
    """Cheap resume check: run files 1..repetitions and the time file exist with ``n_frames`` rows."""
    for run in range(1, repetitions + 1):
        if count_rows(got10k_run_file(tracker_dir, seq_name, run)) != n_frames:
            return False
    time_file = got10k_time_file(tracker_dir, seq_name)
    if count_rows(time_file) != n_frames:
        return False
    with time_file.open(encoding="utf-8", errors="replace") as f:
        return len(f.readline().translate(_TO_SPACE).split()) == repetitions


# ---------------------------------------------------------------- one-pass layout


def ope_file(tracker_dir: str | Path, seq_name: str) -> Path:
    return Path(tracker_dir) / f"{seq_name}.txt"


def ope_time_file(tracker_dir: str | Path, seq_name: str) -> Path:
    return Path(tracker_dir) / "times" / f"{seq_name}_time.txt"


def write_ope(tracker_dir: str | Path, seq_name: str, boxes: np.ndarray,
              times: np.ndarray | None = None) -> None:
    """Write one sequence's boxes (and times); the box file last, so it marks a complete sequence."""
    b = _check_boxes(boxes, seq_name)
    time_file = ope_time_file(tracker_dir, seq_name)
    if times is None:
        with contextlib.suppress(FileNotFoundError):
            time_file.unlink()  # a stale time file would describe another run
    else:
        t = _check_times(times, seq_name)
        if len(t) != len(b):
            raise ValueError(f"{seq_name}: {len(t)} times for {len(b)} boxes")
        atomic_write_text(time_file, format_times(t))
    atomic_write_text(ope_file(tracker_dir, seq_name), format_boxes(b))


def read_ope(tracker_dir: str | Path, seq_name: str, n_frames: int, truncate: bool = False
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one sequence's boxes (N, 4) and times (N,) or None.

    NaN boxes are accepted: other toolkits write them for lost targets and the one-pass rules replace
    them by the previous prediction. ``truncate`` is LaSOT's rule (monkey-17 results longer than the
    ground truth are cut to its length); a shorter file is always an error.
    """
    boxes = read_table(ope_file(tracker_dir, seq_name), n_frames, 4, allow_nan=True,
                       truncate=truncate)
    time_file = ope_time_file(tracker_dir, seq_name)
    if not time_file.exists():
        return boxes, None
    times = read_table(time_file, n_frames, 1, allow_nan=True, truncate=truncate)[:, 0]
    return boxes, times


def is_complete_ope(tracker_dir: str | Path, seq_name: str, n_frames: int,
                    truncate: bool = False) -> bool:
    rows = count_rows(ope_file(tracker_dir, seq_name))
    return rows is not None and (rows == n_frames or (truncate and rows > n_frames))


# ---------------------------------------------------------------- submission zips


def _write_zip(out_zip: Path, members: Iterable[tuple[Path, str]], overwrite: bool) -> Path:
    out_zip = Path(out_zip)
    if out_zip.exists() and not overwrite:
        raise R1TrackError(f"{out_zip} already exists; pass --overwrite (overwrite=True) to replace it")
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_zip.name}.", suffix=".tmp", dir=out_zip.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path, arcname in members:
                zf.write(path, arcname)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_zip)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return out_zip


def _raise_incomplete(problems: list[str], total: int, what: str) -> None:
    if problems:
        shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        raise R1TrackError(f"{len(problems)} of {total} sequences have missing or bad {what} "
                           f"results, nothing packed: {shown}")


def pack_got10k_test(tracker_dir: str | Path, sequences, out_zip: str | Path,
                     overwrite: bool = False) -> Path:
    """Zip GOT-10k results for the evaluation server: the root holds one folder per sequence with its
    run files and time file. Every sequence must be present and valid, else nothing is written."""
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


def pack_trackingnet(tracker_dir: str | Path, sequences, out_zip: str | Path,
                     overwrite: bool = False) -> Path:
    """Zip TrackingNet results: ``<seq>.txt`` files at the root, every sequence present and finite."""
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
    parser.add_argument("--format", required=True, choices=["got10k", "trackingnet"],
                        help="submission format of the evaluation server")
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
