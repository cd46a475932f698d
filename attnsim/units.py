"""Parsing of human sizes ("4k", "1M", "512") into bounded integers."""

import re

from attnsim import limits
from attnsim.errors import InputError

_SUFFIX = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_SIZE = re.compile(r"([0-9]+)([kmg]?)")  # ASCII digits only: '²'.isdigit() is True, int('²') fails
MAX_DIGITS = 18  # longer numbers are refused unread (Python refuses int() of > 4300 digits anyway)


def parse_size(text: str | int, field: str, maximum: int | None = None, minimum: int = 1) -> int:
    """'4k' -> 4096, '1M' -> 1048576, '1000' -> 1000. Binary multiples, as context lengths are.

    Refused: anything but ASCII digits and one k/M/G suffix, values below `minimum` (1: positive;
    0 for counts that may be zero) and above `maximum` (the limit is named in the message)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = _SIZE.fullmatch(str(text).strip().lower())
        if match is None:
            kind = "a positive integer" if minimum > 0 else "a non-negative integer"
            raise InputError(field, f"{text!r} is not {kind} (k/M suffixes allowed)")
        digits = match.group(1).lstrip("0") or "0"
        if len(digits) > MAX_DIGITS:
            limit = f"the limit of {maximum:,}" if maximum is not None else f"{MAX_DIGITS} digits"
            raise InputError(field, f"{digits[:12]}... ({len(digits)} digits) is above {limit} (attnsim/limits.py)")
        value = int(digits) * _SUFFIX[match.group(2)]
    if value < minimum:
        raise InputError(field, f"must be {'positive' if minimum == 1 else f'>= {minimum}'}, got {text!r}")
    if maximum is not None:
        limits.check_max(value, maximum, field)
    return value


def parse_size_list(text: str, field: str, maximum: int | None = None, max_items: int | None = None) -> list[int]:
    """'1k,4k,16k' -> [1024, 4096, 16384]; an empty item ('1k,,4k', '1k,') is an error, not skipped."""
    parts = str(text).split(",")
    if not str(text).strip():
        raise InputError(field, "expected a comma-separated list of sizes")
    empty = [i + 1 for i, p in enumerate(parts) if not p.strip()]
    if empty:
        raise InputError(field, f"item {empty[0]} of {text!r} is empty; expected a comma-separated list of sizes")
    if max_items is not None:
        limits.check_max(len(parts), max_items, field, "items")
    return [parse_size(p, field, maximum) for p in parts]
