"""A plan table: the planner's choice for every (batch, context) bucket of one model on one GPU, read by a
serving loop at every decode step. Python's standard library only: importing this module imports
nothing else of attnsim, and neither numpy nor torch.

    from attnsim import plantable
    table = plantable.load("llama-70b-tp8-h200.json")      # written by `attnsim plan --table`
    entry = table.lookup(16, [8000, 31000, 2100])           # a batch of 3 (its lengths), or (16, 32768)
    entry.strategy, dict(entry.options), entry.spec         # 'splitkv', {'splits': 16}, 'splitkv:splits=16'

Bucketing (BUCKETING, also written into every table):
- batch: the smallest batch bucket >= the batch (nearest above);
- context: the mean context of the batch, ceil(sum of lengths / batch) -- the uniform batch that
  reads the same KV -- then the smallest context bucket >= it;
- above the largest bucket, the largest (`covers` says whether a batch is inside the table);
- each cell holds the plan the planner chose for the uniform batch at the bucket's upper edge
  (bucket batch x bucket context): the most work the bucket holds.
A table has one section per (page size, KV dtype); `lookup(..., page_size=, kv_dtype=)` picks one (not
needed when there is only one). Errors: PlanTableError (a ValueError) naming the field, for a file
that is not a plan table of this schema and for arguments out of range.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from types import MappingProxyType

SCHEMA_VERSION = 1
KIND = "plan-table"
BUCKETING = ("batch: the smallest batch bucket >= the batch; context: ceil(sum of the lengths / batch), then "
             "the smallest context bucket >= it; above the largest bucket, the largest; a cell holds the plan "
             "chosen for the uniform batch at its bucket's upper edges")


class PlanTableError(ValueError):
    """A plan table or a lookup that cannot be read; the message starts with the field it names."""


@dataclass(frozen=True)
class PlanEntry:
    """What to run: the plan (strategy + options, and as a spec string) and its predicted µs per layer."""

    strategy: str
    options: MappingProxyType  # option -> integer, read-only
    spec: str
    time_us: float
    batch: int  # the bucket: the uniform batch the plan was chosen for
    context: int
    fits: bool  # the bucket's KV cache fits the GPU's memory


def _fail(field: str, message: str):
    raise PlanTableError(f"{field}: {message}")


def _int(value, field: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(field, f"expected an integer >= {minimum}, got {value!r}")
    return value


def _buckets(data: dict, field: str) -> tuple[int, ...]:
    values = data.get(field)
    if not isinstance(values, list) or not values:
        _fail(field, "expected a non-empty list of integers")
    values = tuple(_int(v, f"{field}[{i}]") for i, v in enumerate(values))
    if any(b <= a for a, b in zip(values, values[1:])):
        _fail(field, f"must increase strictly, got {list(values)}")
    return values


def _entry(cell, field: str) -> PlanEntry:
    if not isinstance(cell, dict):
        _fail(field, "expected an object")
    strategy, spec, options = cell.get("strategy"), cell.get("spec"), cell.get("options")
    if not isinstance(strategy, str) or not strategy or not isinstance(spec, str) or not spec.startswith(strategy):
        _fail(f"{field}.spec", f"expected a strategy and its plan spec, got {strategy!r} / {spec!r}")
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        _fail(f"{field}.options", "expected an object of integer options")
    for key, value in options.items():
        _int(value, f"{field}.options.{key}", minimum=0)
    time_us = cell.get("time_us")
    if isinstance(time_us, bool) or not isinstance(time_us, (int, float)) or not math.isfinite(time_us) or time_us < 0:
        _fail(f"{field}.time_us", f"expected a finite number >= 0, got {time_us!r}")
    if not isinstance(cell.get("fits"), bool):
        _fail(f"{field}.fits", f"expected true or false, got {cell.get('fits')!r}")
    return PlanEntry(strategy, MappingProxyType(dict(options)), spec, float(time_us),
                     _int(cell.get("batch"), f"{field}.batch"), _int(cell.get("context"), f"{field}.context"),
                     cell["fits"])


def _grid(section: dict, field: str, batches, contexts) -> tuple[tuple[PlanEntry, ...], ...]:
    """cells -> [batch index][context index], every bucket exactly once."""
    cells = section.get("cells")
    if not isinstance(cells, list):
        _fail(f"{field}.cells", "expected a list")
    found: dict[tuple[int, int], PlanEntry] = {}
    for i, cell in enumerate(cells):
        entry = _entry(cell, f"{field}.cells[{i}]")
        key = (entry.batch, entry.context)
        if key in found or entry.batch not in batches or entry.context not in contexts:
            _fail(f"{field}.cells[{i}]", f"batch {entry.batch} x context {entry.context} is a repeated or unknown bucket")
        found[key] = entry
    if len(found) != len(batches) * len(contexts):
        _fail(f"{field}.cells", f"{len(found)} cells for {len(batches)} x {len(contexts)} buckets")
    return tuple(tuple(found[(b, c)] for c in contexts) for b in batches)


def _section_keys(section: dict, field: str) -> list[tuple[int, str]]:
    """Every (page size, KV dtype name) this section answers to; page size 0 = a contiguous cache."""
    page = section.get("page_size")
    page = 0 if page is None else _int(page, f"{field}.page_size")
    names = section.get("kv_dtype_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        _fail(f"{field}.kv_dtype_names", "expected a non-empty list of names")
    return [(page, n.lower()) for n in names]


class PlanTable:
    """A loaded table: `lookup` in a few µs (two bisections and a sum over the batch's lengths)."""

    def __init__(self, data: dict):
        if not isinstance(data, dict):
            _fail("table", "expected a JSON object")
        if data.get("kind") != KIND:
            _fail("kind", f"expected {KIND!r}, got {data.get('kind')!r}")
        if data.get("schema_version") != SCHEMA_VERSION:
            _fail("schema_version", f"{data.get('schema_version')!r} is not supported (this loader reads "
                                    f"{SCHEMA_VERSION})")
        self.meta = data
        self.batches, self.contexts = _buckets(data, "batch_buckets"), _buckets(data, "context_buckets")
        sections = data.get("sections")
        if not isinstance(sections, list) or not sections:
            _fail("sections", "expected a non-empty list")
        self._grids, self._keys = [], {}
        for i, section in enumerate(sections):
            field = f"sections[{i}]"
            if not isinstance(section, dict):
                _fail(field, "expected an object")
            self._grids.append(_grid(section, field, self.batches, self.contexts))
            for key in _section_keys(section, field):
                if key in self._keys:
                    _fail(field, f"page size {key[0]} and KV dtype {key[1]} appear twice")
                self._keys[key] = i

    @property
    def sections(self) -> list[tuple[int, str]]:
        """(page size, KV dtype name) pairs the table answers to; page size 0 = contiguous."""
        return sorted(self._keys)

    def _grid_for(self, page_size, kv_dtype):
        if page_size is None and kv_dtype is None and len(self._grids) == 1:
            return self._grids[0]
        if page_size is not None and kv_dtype is not None:  # the serving loop's call: one dict look-up
            index = self._keys.get((page_size, str(kv_dtype).lower()))
            if index is not None:
                return self._grids[index]
        matches = {i for (page, name), i in self._keys.items()
                   if (page_size is None or page == page_size) and (kv_dtype is None or name == str(kv_dtype).lower())}
        if len(matches) != 1:
            unknown_page = page_size is not None and page_size not in {page for page, _ in self._keys}
            field = "page_size" if unknown_page or (matches and page_size is None) else "kv_dtype"
            _fail(field, f"{'no' if not matches else 'more than one'} section for page_size={page_size!r}, "
                         f"kv_dtype={kv_dtype!r}; the table holds {self.sections}")
        return self._grids[matches.pop()]

    def buckets(self, batch: int, contexts) -> tuple[int, int]:
        """(batch index, context index) of the cell answering (batch, contexts); see BUCKETING."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            _fail("batch", f"expected an integer >= 1, got {batch!r}")
        if isinstance(contexts, int) and not isinstance(contexts, bool):
            mean = contexts
        else:
            try:
                count, total, low = len(contexts), sum(contexts), min(contexts)
            except (TypeError, ValueError):
                _fail("contexts", f"expected a length or one length per sequence, got {contexts!r}")
            if count != batch:
                _fail("contexts", f"{count} lengths for a batch of {batch}")
            mean = -(-total // count) if low >= 1 and isinstance(total, int) else 0
        if mean < 1:
            _fail("contexts", f"lengths must be integers >= 1, got {contexts!r}")
        b = min(bisect.bisect_left(self.batches, batch), len(self.batches) - 1)
        return b, min(bisect.bisect_left(self.contexts, mean), len(self.contexts) - 1)

    def covers(self, batch: int, contexts) -> bool:
        """Whether (batch, contexts) lies within the buckets (else the largest bucket answers)."""
        mean = contexts if isinstance(contexts, int) else -(-sum(contexts) // len(contexts))
        return batch <= self.batches[-1] and mean <= self.contexts[-1]

    def lookup(self, batch: int, contexts, page_size: int | None = None, kv_dtype: str | None = None) -> PlanEntry:
        """The plan for a decode step of `batch` sequences of `contexts` (a length, or one per sequence)."""
        b, c = self.buckets(batch, contexts)
        return self._grid_for(page_size, kv_dtype)[b][c]


def load(path) -> PlanTable:
    """Read and check a plan table file (PlanTableError naming the field when it is not one)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle, parse_constant=lambda c: _fail("table", f"{c} is not a number JSON allows"))
    except OSError as exc:
        raise PlanTableError(f"path: cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise PlanTableError(f"table: {path} is not JSON (line {exc.lineno}, column {exc.colno})") from None
    return PlanTable(data)
