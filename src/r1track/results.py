"""Result files of both protocols: layouts, writers, the one reader, completeness for resume.

Layouts (see docs/architecture.md):
- GOT-10k protocol: ``<tracker_dir>/<seq>/<seq>_001.txt`` ... (one file per run, ``x,y,w,h`` per frame,
  frame 0 included) and ``<seq>_time.txt`` (one row per frame, one column of seconds per run). The time
  file is written last, so a complete time file marks a complete sequence (used to resume).
- One-pass protocol: ``<tracker_dir>/<seq>.txt`` and ``<tracker_dir>/times/<seq>_time.txt``.
- Both: ``<tracker_dir>/r1track-answers/<seq>.json``, the model's answer counts (trackers that ask a
  model), written before the results.

Readers accept ``,``, tab or space delimiters and report bad input as ``DataError(path, message, line)``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from r1track.atomic import atomic_write_text
from r1track.errors import DataError, R1TrackError

BOX_FORMAT = "%.3f,%.3f,%.3f,%.3f\n"  # the got10k toolkit's precision
TIME_FORMAT = "%.8f"
_TO_SPACE = bytes.maketrans(b",\t\r", b"   ")
_TO_SPACE_STR = str.maketrans(",\t\r", "   ")


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
        raise ValueError(
            f"{what}: box of frame {bad} is not finite ({b[bad].tolist()}); a tracker must never return NaN or inf"
        )
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


def _parse(path: str | Path, body: bytes, n_lines: int, want: int) -> np.ndarray:
    """The one parser of result files: numpy's C reader over the body with every delimiter made a
    space (any float syntax Python accepts, nan and inf too); on a shape or syntax error, a look at
    the lines names the first bad one."""
    text = body.translate(_TO_SPACE)
    try:  # loadtxt skips blank lines, hence the shape check
        table = np.loadtxt(io.BytesIO(text), dtype=np.float64, comments=None, ndmin=2, encoding="utf-8")
        if table.shape == (n_lines, want):
            return table
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        lines = body.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise DataError(path, "is not a text file") from None
    for i, line in enumerate(lines):
        row = line.translate(_TO_SPACE_STR).split()
        if len(row) != want:
            raise DataError(path, f"expected {want} values, found {len(row)}: {line.strip()!r}", i + 1)
        try:
            [float(v) for v in row]
        except ValueError:
            raise DataError(path, f"not a number: {line.strip()!r}", i + 1) from None
    raise DataError(path, "is not a table of numbers")


def read_tables(specs: list[tuple[str | Path, int | None, int, bool, bool]]) -> list[np.ndarray]:
    """Read several numeric tables; each spec is (path, n_rows, n_cols, allow_nan, truncate), see
    ``read_table``. Tables with the same column count are parsed in one pass."""
    loaded = [_read_body(p, n_rows, truncate) for p, n_rows, _, _, truncate in specs]
    tables: list = [None] * len(specs)
    for cols in {s[2] for s in specs}:
        members = [i for i, s in enumerate(specs) if s[2] == cols]
        lines = [loaded[i][1] for i in members]
        try:  # one C pass over every table of this width; a bad one is then found file by file
            values = _parse("", b"\n".join(loaded[i][0] for i in members), sum(lines), cols)
        except DataError:
            values = np.concatenate([_parse(specs[i][0], *loaded[i], cols) for i in members])
        for i, end, n in zip(members, np.cumsum(lines), lines):
            tables[i] = values[end - n : end]
    for (path, _, _, allow_nan, _), (body, _), table in zip(specs, loaded, tables):
        bad = np.isinf(table) if allow_nan else ~np.isfinite(table)
        if bad.any():
            i = int(np.flatnonzero(bad.any(1))[0])
            line = body.split(b"\n")[i].decode("utf-8", "replace")
            raise DataError(path, f"value is not finite: {line.strip()!r}", i + 1)
    return tables


def read_table(
    path: str | Path, n_rows: int | None, n_cols: int, *, allow_nan: bool = False, truncate: bool = False
) -> np.ndarray:
    """Read a numeric table (``,``, tab or space separated) as float64 (rows, n_cols).

    Checks the row count when ``n_rows`` is given (``truncate`` cuts longer files to ``n_rows``; blank
    lines at the end are ignored, blank lines inside are errors), the column count, that every value
    is a number and, unless ``allow_nan``, that every value is finite (inf is never allowed). Errors
    name the file and the line.
    """
    return read_tables([(Path(path), n_rows, n_cols, allow_nan, truncate)])[0]


def check_names(names: Iterable[str], what: str = "sequence name") -> None:
    """Names become file and folder names: refuse ones that would leave the tracker folder (``..``,
    absolute, with a path separator) and duplicates (their results would overwrite each other)."""
    seen = set()
    for name in names:
        if name in ("", ".", "..") or any(c in name for c in "/\\\0") or os.path.isabs(name):
            raise R1TrackError(f"unsafe {what} {name!r}: it must be one file name, without / or \\")
        if name in seen:
            raise R1TrackError(f"duplicate {what} {name!r}: results of both would share one file")
        seen.add(name)


# ---------------------------------------------------------------- GOT-10k layout


def got10k_run_file(tracker_dir: str | Path, seq_name: str, run: int) -> Path:
    """Path of run ``run`` (1-based)."""
    return Path(tracker_dir) / seq_name / f"{seq_name}_{run:03d}.txt"


def got10k_time_file(tracker_dir: str | Path, seq_name: str) -> Path:
    return Path(tracker_dir) / seq_name / f"{seq_name}_time.txt"


def got10k_run_files(tracker_dir: str | Path, seq_name: str) -> list[Path]:
    """The run files present, in run order (what the toolkit's ``<seq>_[0-9]*.txt`` glob finds)."""
    return _got10k_listing(tracker_dir, seq_name)[0]


def _got10k_listing(tracker_dir: str | Path, seq_name: str, as_str: bool = False) -> tuple[list, str | Path | None]:
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


def has_results(tracker_dir: str | Path, seq_name: str) -> bool:
    """Whether ``tracker_dir`` holds a result file of the sequence (either protocol)."""
    return bool(_got10k_listing(tracker_dir, seq_name)[0]) or ope_file(tracker_dir, seq_name).is_file()


def write_got10k(tracker_dir: str | Path, seq_name: str, runs: list[np.ndarray], times: list[np.ndarray]) -> None:
    """Write all runs of one sequence; the time file last, so it marks a complete sequence."""
    check_names([seq_name])
    if not runs or len(runs) != len(times):
        raise ValueError(f"{seq_name}: need one time array per run, got {len(runs)} runs and {len(times)} time arrays")
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


def read_got10k(tracker_dir: str | Path, seq_name: str, n_frames: int) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Read and validate every run of one sequence.

    Returns ``(runs, times)``: runs are (N, 4) float arrays (no NaN/inf); times is (N, R) (NaN allowed,
    as the toolkit drops it) or None when the time file is missing.
    """
    return read_got10k_many(tracker_dir, [(seq_name, n_frames)])[0]


def read_got10k_many(
    tracker_dir: str | Path, items: list[tuple[str, int]]
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
        out.append((tables[at : at + n_runs], tables[at + n_runs] if has_time else None))
        at += n_runs + has_time
    return out


def is_complete_got10k(tracker_dir: str | Path, seq_name: str, n_frames: int, repetitions: int) -> bool:
    """Resume check: run files 1..repetitions hold ``n_frames`` finite boxes and the time file
    ``n_frames`` rows of ``repetitions`` columns (content parsed, so a cut or garbled file reruns)."""
    specs = [(got10k_run_file(tracker_dir, seq_name, r), n_frames, 4, False, False) for r in range(1, repetitions + 1)]
    return _readable(specs + [(got10k_time_file(tracker_dir, seq_name), n_frames, repetitions, True, False)])


def _readable(specs) -> bool:
    try:
        read_tables(specs)
    except DataError:
        return False
    return True


# ---------------------------------------------------------------- one-pass layout


def ope_file(tracker_dir: str | Path, seq_name: str) -> Path:
    return Path(tracker_dir) / f"{seq_name}.txt"


def ope_time_file(tracker_dir: str | Path, seq_name: str) -> Path:
    return Path(tracker_dir) / "times" / f"{seq_name}_time.txt"


def write_ope(tracker_dir: str | Path, seq_name: str, boxes: np.ndarray, times: np.ndarray | None = None) -> None:
    """Write one sequence's boxes (and times); the box file last, so it marks a complete sequence."""
    check_names([seq_name])
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


def read_ope(
    tracker_dir: str | Path, seq_name: str, n_frames: int, truncate: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one sequence's boxes (N, 4) and times (N,) or None.

    NaN boxes are accepted: other toolkits write them for lost targets and the one-pass rules replace
    them by the previous prediction. ``truncate`` is LaSOT's rule (monkey-17 results longer than the
    ground truth are cut to its length); a shorter file is always an error.
    """
    boxes = read_table(ope_file(tracker_dir, seq_name), n_frames, 4, allow_nan=True, truncate=truncate)
    time_file = ope_time_file(tracker_dir, seq_name)
    if not time_file.exists():
        return boxes, None
    times = read_table(time_file, n_frames, 1, allow_nan=True, truncate=truncate)[:, 0]
    return boxes, times


def is_complete_ope(tracker_dir: str | Path, seq_name: str, n_frames: int) -> bool:
    """Resume check: the box file holds ``n_frames`` finite boxes (what the runner writes)."""
    return _readable([(ope_file(tracker_dir, seq_name), n_frames, 4, False, False)])


# ---------------------------------------------------------------- answer counts


@dataclass
class AnswerCounts:
    """A model's answers over a sequence's runs: how many, how many held no box, how many boxes the
    tracker refused (degenerate), how many said the target is absent (``[]``); the tracker kept its
    previous box for all three, but only the first two are failures."""

    answers: int = 0
    unparsable: int = 0
    rejected: int = 0
    absent: int = 0

    @property
    def failure_rate(self) -> float:
        return (self.unparsable + self.rejected) / self.answers if self.answers else 0.0


def answers_file(tracker_dir: str | Path, seq_name: str) -> Path:
    return Path(tracker_dir) / "r1track-answers" / f"{seq_name}.json"


def write_answers(tracker_dir: str | Path, seq_name: str, counts: AnswerCounts) -> None:
    atomic_write_text(answers_file(tracker_dir, seq_name), json.dumps(asdict(counts)) + "\n")


def read_answers(tracker_dir: str | Path, seq_names: Iterable[str]) -> dict[str, AnswerCounts]:
    """The answer counts of the named sequences that have them."""
    out = {}
    for name in seq_names:
        path = answers_file(tracker_dir, name)
        try:
            out[name] = AnswerCounts(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            continue
        except (ValueError, TypeError) as e:
            raise DataError(path, f"not an answer-counts file ({e})") from None
    return out
