"""Collecting validation problems of a scenario file: one clear message per mistake, with its line.

A `Checker` reads values out of the parsed TOML and records a `Problem` (field path, line, message)
instead of raising at the first one, so a user fixes every mistake in one pass. `raise_if_any`
turns the list into one `ScenarioError` (an InputError, so the CLI prints it on one line).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from attnsim import limits
from attnsim.errors import InputError
from attnsim.scenarios.toml_lines import line_of
from attnsim.units import parse_size


@dataclass(frozen=True)
class Problem:
    field: str  # "ragged[0].seed"
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.field}: {self.message}"


class ScenarioError(InputError):
    """A scenario file with mistakes; `problems` lists each one."""

    def __init__(self, source: str, problems: list[Problem]):
        problems = sorted(problems, key=lambda p: p.line or 0)  # in file order
        self.problems = problems
        if len(problems) == 1:
            message = str(problems[0])
        else:
            message = f"{len(problems)} mistakes: " + "; ".join(map(str, problems))
        super().__init__(source, message)


def dotted(path: tuple) -> str:
    """("ragged", 0, "seed") -> "ragged[0].seed"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word).lower(), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class Checker:
    """Typed reads from parsed TOML tables; every failure becomes a Problem, never an exception."""

    def __init__(self, source: str, lines: dict[tuple, int]):
        self.source = source
        self.lines = lines
        self.problems: list[Problem] = []

    def fail(self, path: tuple, message: str) -> None:
        self.problems.append(Problem(dotted(path), line_of(self.lines, path), message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise ScenarioError(self.source, self.problems)

    def known_keys(self, table: dict, allowed, path: tuple = ()) -> None:
        for key in table:
            if key not in allowed:
                hint = suggest(key, allowed) or f" (expected one of: {', '.join(allowed)})"
                self.fail(path + (key,), f"unknown key{hint}")

    def string(self, table: dict, key: str, path: tuple, default: str | None = None) -> str | None:
        value = table.get(key, default)
        if value is not None and not isinstance(value, str):
            self.fail(path + (key,), f"must be a string, got {value!r}")
            return default
        return value

    def integer(self, table: dict, key: str, path: tuple, default=None, minimum: int = 1,
                maximum: int | None = None) -> int | None:
        value = table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path + (key,), f"must be an integer >= {minimum}, got {value!r}")
            return default
        return value if self._within(value, maximum, path + (key,)) else default

    def number(self, table: dict, key: str, path: tuple, default=None, maximum: float | None = None) -> float | None:
        value = table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            self.fail(path + (key,), f"must be a finite positive number, got {value!r}")
            return default
        return float(value) if self._within(value, maximum, path + (key,)) else default

    def _within(self, value, maximum, path: tuple) -> bool:
        try:
            if maximum is not None:
                limits.check_max(value, maximum, dotted(path))
            return True
        except InputError as exc:
            self.fail(path, exc.message)
            return False

    def size(self, value, path: tuple, maximum: int | None = limits.MAX_CONTEXT) -> int | None:
        """A token count: 4096, "4k" or "1M" (at most `maximum`); None (and a problem) when invalid."""
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self.fail(path, f"must be a positive integer or a size like \"4k\", got {value!r}")
            return None
        try:
            return parse_size(value, dotted(path), maximum)
        except InputError as exc:
            self.fail(path, exc.message)
            return None

    def size_key(self, table: dict, key: str, path: tuple, default=None,
                 maximum: int | None = limits.MAX_CONTEXT) -> int | None:
        return default if key not in table else self.size(table[key], path + (key,), maximum)

    def list_of(self, table: dict, key: str, path: tuple, kinds: tuple[type, ...], allow_empty=False,
                max_items: int | None = None) -> list:
        """The items of a list that are of `kinds` (a single item is accepted as a one-item list)."""
        value = table[key]
        if isinstance(value, kinds) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not (value or allow_empty):
            self.fail(path + (key,), f"must be a non-empty list, got {_shown(value)}")
            return []
        if not self._within(len(value), max_items, path + (key,)):
            return []
        return [v for i, v in enumerate(value) if self._is(v, kinds, path + (key, i))]

    def _is(self, value, kinds, path) -> bool:
        if isinstance(value, kinds) and not isinstance(value, bool):
            return True
        names = " or ".join(k.__name__ for k in kinds).replace("str", "string").replace("int", "integer")
        self.fail(path, f"must be a {names}, got {value!r}")
        return False

    def tables(self, data: dict, key: str, max_items: int | None = None) -> list[dict]:
        """An array of tables (`[[key]]`); a lone table is accepted as one entry."""
        value = data.get(key, [])
        value = [value] if isinstance(value, dict) else value
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail((key,), f"must be tables written as [[{key}]], got {_shown(value)}")
            return []
        return value if self._within(len(value), max_items, (key,)) else []


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
