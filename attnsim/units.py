"""Parsing of human sizes ("4k", "1M", "512") into positive integers."""

from attnsim.errors import InputError

_SUFFIX = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str | int, field: str) -> int:
    """'4k' -> 4096, '1M' -> 1048576, '1000' -> 1000. Binary multiples, as context lengths are."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        raw = str(text).strip().lower()
        suffix = raw[-1] if raw and raw[-1] in "kmg" else ""
        digits = raw[: len(raw) - len(suffix)]
        if not digits.isdigit():
            raise InputError(field, f"{text!r} is not a positive integer (k/M suffixes allowed)")
        value = int(digits) * _SUFFIX[suffix]
    if value <= 0:
        raise InputError(field, f"must be positive, got {text!r}")
    return value


def parse_size_list(text: str, field: str) -> list[int]:
    """'1k,4k,16k' -> [1024, 4096, 16384]."""
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise InputError(field, "expected a comma-separated list of sizes")
    return [parse_size(p, field) for p in parts]
