"""CSV inputs read with checks: unreadable, empty, binary or header-only files and bad cells are one
InputError naming the option, the file, the line and the column.

Line numbers are the file's: a frame keeps pandas' row index from the read (0 = line 2, the first
line after the header), also after rows are filtered, so `line_of(index)` is where the cell sits.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from attnsim.errors import InputError

_INTEGRAL = re.compile(r"[0-9]{1,12}(\.0*)?")  # 4096 or 4096.0 (pandas writes integers of a float column so)
_LENGTHS = re.compile(r"[0-9]{1,12}(;[0-9]{1,12})+")  # a ragged batch: 'a;b;c'


def line_of(index) -> int:
    return int(index) + 2


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


def read_csv(path, field: str, max_rows: int, required=()) -> pd.DataFrame:
    """The rows of a CSV file with a header; at most `max_rows` of them, every `required` column present."""
    try:
        frame = pd.read_csv(path, nrows=max_rows + 1, low_memory=False)
    except pd.errors.EmptyDataError:
        raise InputError(field, f"{path} is empty (expected a CSV header and rows)") from None
    except UnicodeDecodeError:
        raise InputError(field, f"{path} is not a text CSV file (it has bytes that are not UTF-8)") from None
    except (OSError, ValueError) as exc:
        raise InputError(field, f"cannot read {path} as CSV: {_one_line(exc)}") from None
    _refuse_repeated_columns(path, field)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(field, f"{path} lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise InputError(field, f"{path} has a header but no rows")
    if len(frame) > max_rows:
        raise InputError(field, f"{path} has more than {max_rows:,} rows, the limit (attnsim/limits.py)")
    return frame


def _refuse_repeated_columns(path, field: str) -> None:
    """A column named twice in the header: pandas reads the first and renames the second ('time_us.1'),
    so which of two values is used would be an accident of their order."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            header = next(csv.reader(file), [])
    except (OSError, csv.Error):  # pandas read it: nothing more to learn here
        return
    seen = set()
    for name in header:
        if name in seen:
            raise InputError(field, f"{Path(path).name}: column {name!r} appears twice in the header; keep one")
        seen.add(name)


def _refuse(frame: pd.DataFrame, bad: np.ndarray, column: str, field: str, path, rule: str) -> None:
    if bad.any():
        index = frame.index[np.flatnonzero(bad)[0]]
        value = frame.loc[index, column]
        value = value.item() if hasattr(value, "item") else value  # np.float64(inf) -> inf
        raise InputError(f"{field}.{column}", f"{Path(path).name} line {line_of(index)}: {value!r} {rule}")


def integer_column(frame: pd.DataFrame, column: str, field: str, path, low: int, high: int,
                   optional: bool = False) -> pd.Series:
    """The column as int64: every cell an integer (no fraction) in [low, high]. With `optional`, empty
    cells pass too and the column comes back as float64, NaN where empty."""
    cells = frame[column]
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(values) & (values == np.round(values)) & (values >= low) & (values <= high)
    ok &= cells.dtype != bool  # pandas reads a column of True/False as booleans, which are not counts
    if optional:
        ok |= cells.isna().to_numpy()
    _refuse(frame, ~ok, column, field, path, f"must be an integer in [{low:,}, {high:,}]")
    return pd.Series(values if optional else values.astype(np.int64), index=frame.index)


def number_column(frame: pd.DataFrame, column: str, field: str, path, low: float, high: float,
                  optional: bool = False) -> pd.Series:
    """The column as float64: every cell finite in [low, high] (empty cells allowed when `optional`)."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(values) & (values >= low) & (values <= high)
    if optional:
        ok = ok | frame[column].isna().to_numpy()
    _refuse(frame, ~ok, column, field, path, f"must be a finite number in [{low:g}, {high:g}]")
    return pd.Series(values, index=frame.index)


def text_column(frame: pd.DataFrame, column: str, field: str, path) -> None:
    """Every cell non-empty."""
    cells = frame[column]
    bad = (cells.isna() | (cells.astype(str).str.strip() == "")).to_numpy()
    _refuse(frame, bad, column, field, path, "must not be empty")


def lengths_column(frame: pd.DataFrame, column: str, field: str, path, optional: bool = False) -> None:
    """Every cell a token count ('4096', '4096.0') or a ragged batch's lengths ('1000;50000;3000')."""
    cells = frame[column]
    text = cells.astype(str).str.strip()
    ok = text.map(lambda t: bool(_INTEGRAL.fullmatch(t) or _LENGTHS.fullmatch(t))).to_numpy(dtype=bool)
    if optional:
        ok = ok | cells.isna().to_numpy()
    _refuse(frame, ~ok, column, field, path, "must be a token count or ';'-separated token counts")
