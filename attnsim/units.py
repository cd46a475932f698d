"""Parsing of human sizes ("4k", "1.5M", "512") and context sweeps ("1k:256k:1k,300k") into bounded integers."""

import re
from fractions import Fraction

from attnsim import limits
from attnsim.errors import InputError

_SUFFIX = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# ASCII digits only ('²'.isdigit() is True, int('²') fails); an optional fraction for '1.5M'
_SIZE = re.compile(r"([0-9]+)(?:\.([0-9]+))?([kmg]?)")
MAX_DIGITS = 18  # longer numbers are refused unread (Python refuses int() of > 4300 digits anyway)


def parse_size(text: str | int, field: str, maximum: int | None = None, minimum: int = 1) -> int:
    """'4k' -> 4096, '1M' -> 1048576, '1.5k' -> 1536, '1000' -> 1000. Binary multiples, as context lengths are.

    Refused: anything but ASCII digits, an optional fraction and one k/M/G suffix; a fraction that
    does not give a whole number ('1.1k' = 1126.4); values below `minimum` (1: positive; 0 for counts
    that may be zero) and above `maximum` (the limit is named in the message)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        value = _parse_number(text, field, minimum, maximum)
    if value < minimum:
        raise InputError(field, f"must be {'positive' if minimum == 1 else f'>= {minimum}'}, got {text!r}")
    if maximum is not None:
        limits.check_max(value, maximum, field)
    return value


def _parse_number(text, field: str, minimum: int, maximum: int | None) -> int:
    match = _SIZE.fullmatch(str(text).strip().lower())
    if match is None:
        kind = "a positive integer" if minimum > 0 else "a non-negative integer"
        raise InputError(field, f"{text!r} is not {kind} (k/M suffixes allowed)")
    whole, frac, suffix = match.group(1).lstrip("0") or "0", match.group(2) or "", match.group(3)
    digits = len(whole) + len(frac)
    if digits > MAX_DIGITS:
        limit = f"the limit of {maximum:,}" if maximum is not None else f"{MAX_DIGITS} digits"
        raise InputError(field, f"{whole[:12]}... ({digits} digits) is above {limit} (attnsim/limits.py)")
    value = Fraction(f"{whole}.{frac}" if frac else whole) * _SUFFIX[suffix]
    if value.denominator != 1:
        raise InputError(field, f"{text!r} is {float(value):g}, not a whole number")
    return int(value)


def format_tokens(tokens: float) -> str:
    """1024 -> '1k', 524288 -> '512k', 1048576 -> '1M', 3000 -> '3000' (binary multiples; parse_size's inverse)."""
    tokens = int(tokens)
    for size, suffix in ((1 << 20, "M"), (1 << 10, "k")):
        if tokens >= size and tokens % size == 0:
            return f"{tokens // size}{suffix}"
    return str(tokens)


def parse_size_list(text: str, field: str, maximum: int | None = None, max_items: int | None = None) -> list[int]:
    """'1k,4k,16k' -> [1024, 4096, 16384]; an empty item ('1k,,4k', '1k,') is an error, not skipped."""
    parts = _items(text, field)
    if max_items is not None:
        limits.check_max(len(parts), max_items, field, "items")
    return [parse_size(p, field, maximum) for p in parts]


def parse_sweep(text: str, field: str, maximum: int | None = None, max_items: int | None = None) -> list[int]:
    """'1k:256k:1k,300k' -> [1024, 2048, ..., 262144, 307200]: sizes and start:stop:step ranges
    (stop included when the steps reach it). How many values a range gives is counted before any is
    made, so `max_items` bounds the list, not the memory spent finding out it is too long."""
    parts = _items(text, field)
    ranges = [_range(p, field, maximum) if ":" in p else None for p in parts]
    count = sum(len(r) if r is not None else 1 for r in ranges)
    if max_items is not None:
        limits.check_max(count, max_items, field, "values")
    out: list[int] = []
    for part, r in zip(parts, ranges):
        out.extend(r if r is not None else [parse_size(part, field, maximum)])
    return out


def _range(part: str, field: str, maximum: int | None) -> range:
    """'1k:256k:1k' -> range(1024, 262145, 1024): start <= stop, step >= 1."""
    pieces = part.split(":")
    if len(pieces) != 3:
        raise InputError(field, f"{part.strip()!r}: a range is start:stop:step, e.g. 1k:256k:1k")
    start, stop, step = (_piece(text, name, field, part, limit) for text, name, limit in
                         zip(pieces, ("start", "stop", "step"), (maximum, maximum, None)))
    if start > stop:
        raise InputError(field, f"{part.strip()!r}: start {start:,} is above stop {stop:,}")
    return range(start, stop + 1, step)


def _piece(text: str, name: str, field: str, part: str, maximum: int | None) -> int:
    """One of start / stop / step, its error naming the range and which of the three it is."""
    try:
        return parse_size(text, field, maximum)
    except InputError as exc:
        raise InputError(field, f"{part.strip()!r}: {name} {exc.message}") from None


def _items(text: str, field: str) -> list[str]:
    parts = str(text).split(",")
    if not str(text).strip():
        raise InputError(field, "expected a comma-separated list of sizes")
    empty = [i + 1 for i, p in enumerate(parts) if not p.strip()]
    if empty:
        raise InputError(field, f"item {empty[0]} of {text!r} is empty; expected a comma-separated list of sizes")
    return parts
