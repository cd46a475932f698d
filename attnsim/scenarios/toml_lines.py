"""Line numbers of keys in a TOML text, so a validation error can say where the mistake is.

tomllib returns plain dicts without positions; this scanner reads the text line by line and maps
each key path to the line it is set on: ("batches",) -> 7, ("ragged", 1, "seed") -> 23. It knows
`[table]`, `[[array.of.tables]]` and `key = value` lines (bare, quoted or dotted keys); keys inside
inline tables and multi-line arrays are located at their parent key's line.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", dotted)
    return tuple(p.strip("\"'") for p in parts)


def key_lines(text: str) -> dict[tuple, int]:
    """Key path -> 1-based line number, for every table header and `key =` line found."""
    lines: dict[tuple, int] = {}
    counts: dict[tuple, int] = {}  # array-of-tables name -> entries seen so far
    table: tuple = ()
    depth = 0  # open brackets of a multi-line value; keys inside are not scanned
    for number, line in enumerate(text.splitlines(), start=1):
        if depth == 0 and (header := _HEADER.match(line)):
            table = _table_path(header.group(1) == "[[", _split_key(header.group(2)), counts)
            lines.setdefault(table, number)
            continue
        if depth == 0 and (key := _KEY.match(line)):
            lines.setdefault(table + _split_key(key.group(1)), number)
        depth = max(0, depth + _bracket_balance(line))
    return lines


def _table_path(is_array: bool, name: tuple, counts: dict) -> tuple:
    if not is_array:
        return name
    index = counts.get(name, 0)
    counts[name] = index + 1
    return name + (index,)


def _bracket_balance(line: str) -> int:
    """Opening minus closing brackets/braces outside strings and comments."""
    code = re.sub(r'"(?:\\.|[^"\\])*"|\'[^\']*\'', "", line).split("#", 1)[0]
    return code.count("[") + code.count("{") - code.count("]") - code.count("}")


def line_of(lines: dict[tuple, int], path: tuple) -> int | None:
    """The line of `path`, or of its nearest located parent; None when nothing is known."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
