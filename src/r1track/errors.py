"""Errors that name the file (and line) at fault, so users never read a deep traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable


class R1TrackError(Exception):
    """Base class: the CLI prints these as one clear line and exits with status 2."""


def exit_status(main: Callable[[], int], prog: str) -> int:
    """``main()``'s exit status; bad input (an ``R1TrackError``) as one line ``prog: error: ...`` on stderr
    and status 2, never a traceback. The CLI's and the scripts' one way of saying so."""
    try:
        return main()
    except R1TrackError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2


class DataError(R1TrackError):
    """Bad input data: a dataset file, a frame, or a result file."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


class DataWarning(UserWarning):
    """Suspicious but usable input (a degenerate box after the first frame, a truncated frame). The CLI
    prints these as one line each; Python users can filter or escalate them with ``warnings``."""


def warn_data(path: str | Path, message: str, line: int | None = None) -> None:
    """Warn about input at ``path`` (and ``line``) in the same words a ``DataError`` would use."""
    import warnings

    where = f"{Path(path)}:{line}" if line is not None else str(Path(path))
    warnings.warn(DataWarning(f"{where}: {message}"), stacklevel=2)
