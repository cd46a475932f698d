"""Batch-invariant plans: one fixed plan per (model shape, GPU, dtype, kernel shape), chosen by the model.

A plan is batch-invariant when a sequence's KV split boundaries and merge order are a function of its
own length and fixed constants only, so its output bits do not depend on which sequences share the
batch. Which of our plan families are, with a value fixed per shape (never chosen from the batch):

- fa2: no split at all;
- balanced:chunk_tokens=C: ceil(len / C) chunks per sequence, merged in chunk order; with
  max_splits=M, a sequence longer than M chunks is cut into M equal chunks instead (so short
  sequences are cut finely and long ones into a bounded number of pieces: a split count that grows
  with the sequence's own length, then stops);
- flashdecoding:splits=S and splitkv:splits=S: FA2's ranges of the sequence's own tiles,
  [s·per, (s + 1)·per) with per = ceil(tiles / S), merged in split order (by the combine launch, or
  by the last-arriving split in slot order);
- splitkv:chunk_tokens=C[,max_splits=M]: balanced's chunks in one launch, merged by the last arrival;
- NOT stream-K or hybrid (the cut follows the total work of the batch), nor any plan whose split
  count or chunk the planner chooses per workload (it follows the batch).

So the planner may not switch between invariant plans from one batch to the next: the choice is made
once per shape, over a representative grid of uniform batches x contexts (GRID_BATCHES x
GRID_CONTEXTS, each point's K+V at most GRID_MAX_KV_BYTES: the oracle study's cap), as the candidate
with the least predicted mean regret vs the fastest plan of the unconstrained search at each point;
of the candidates within TIE_PP points of that mean, the simplest runs (fewest launches, then fewest
pieces per sequence). The result is cached per key, and written into plan tables (planner/table.py).

    choice = choose(workload, gpu, user_config, entries, fastest_us)
    choice.chosen.spec          # e.g. 'balanced:chunk_tokens=512'
    choice.why                  # the fixed split size and its predicted regret over the grid

`fastest_us(workload) -> µs` is the unconstrained search (search.py passes it: this module does not
import the search, which imports it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from attnsim import strategies
from attnsim.planner import canonical, candidates as cand
from attnsim.plans.spec import plan_spec
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload

INVARIANT_SPLITS = (2, 4, 8, 16, 32, 64)  # fixed split counts (flashdecoding, splitkv)
CHUNK_TILES = (1, 2, 4, 8, 16, 32, 64, 128)  # fixed chunks, in KV tiles (balanced)
CHUNK_MAX_SPLITS = (None, 8, 16, 32, 64, 128)  # ... each with at most this many chunks per sequence (None: no cap)
GRID_BATCHES = (1, 2, 4, 8, 16, 32, 64)
GRID_CONTEXTS = tuple(512 << k for k in range(11))  # 512 .. 512k tokens (the oracle study's range)
GRID_MAX_KV_BYTES = 3e9  # K + V per grid point (planner_oracle.MAX_KV_BYTES)
# Two candidates whose mean regret over the grid differs by less than this (percentage points) are
# not told apart: the grid is a sample of serving points, not the workload mix of any one engine.
TIE_PP = 0.5
# The entries whose plans are invariant with a fixed value of their search axis (or with no axis).
INVARIANT_AXES = {(): (), ("splits",): "splits", ("chunk_tokens",): "chunk_tokens"}


@dataclass(frozen=True)
class Scored:
    """One fixed plan, predicted over the grid: regret in percent vs the fastest plan at each point."""

    strategy: str
    options: tuple[tuple[str, int], ...]
    mean_pct: float
    p95_pct: float
    max_pct: float
    launches: int  # at the grid's longest context: 2 when a combine launch merges the splits
    pieces: int  # chunks or splits of the grid's longest sequence (1: fa2)

    @property
    def spec(self) -> str:
        return plan_spec(self.strategy, dict(self.options))


@dataclass(frozen=True)
class InvariantChoice:
    chosen: Scored
    scored: tuple[Scored, ...]  # every candidate, least mean regret first
    points: int  # grid points scored
    # The least mean regret over the grid of any rule that picks the chunk by the sequence's own length
    # (per grid context the best chunk of the balanced family for all its batches): what no fixed
    # chunk rule of these kernels can beat under the model. None: no chunked entry searched.
    length_rule_bound_pct: float | None = None

    @property
    def why(self) -> str:
        c, best = self.chosen, self.scored[0]
        fixed = describe(c)
        tie = "" if c is best else f" (simplest within {TIE_PP} points of {best.spec}: {best.mean_pct:.1f}%)"
        return (f"batch-invariant: {fixed}, fixed for this model shape and GPU: the least predicted mean "
                f"regret vs the unconstrained best over {self.points} batch x context points "
                f"({c.mean_pct:.1f}% mean, p95 {c.p95_pct:.1f}%, max {c.max_pct:.1f}%){tie}{self.bound_words}")

    def best_where(self, keep) -> Scored | None:
        """The least-regret scored plan for which `keep(plan)` holds (None: none)."""
        return next((s for s in self.scored if keep(s)), None)

    @property
    def engine_rules(self) -> dict[str, Scored]:
        """What engines without a length cap can set, scored on the same grid: one fixed chunk merged by a
        combine launch (FlashInfer's fixed split size and its merge kernel; `launches` is counted at the
        grid's longest context, which every chunk splits) and no split at all (vLLM batch-invariant FA:
        num_splits=1)."""
        rules = {"one fixed chunk": self.best_where(lambda s: s.launches > 1  # chunks merged by a combine launch
                                                    and set(dict(s.options)) == {"chunk_tokens"}),
                 "no split": self.best_where(lambda s: not s.options)}
        return {k: v for k, v in rules.items() if v is not None}

    @property
    def bound_words(self) -> str:
        if self.length_rule_bound_pct is None:
            return ""
        return f"; no chunk-by-length rule does better than {self.length_rule_bound_pct:.1f}% mean here"


def describe(s: Scored) -> str:
    """The fixed split rule of a plan, in words a serving engineer sets."""
    options = dict(s.options)
    if "chunk_tokens" in options and "max_splits" in options:
        return (f"every sequence cut alone into {options['chunk_tokens']}-token chunks, at most "
                f"{options['max_splits']} (a longer one into {options['max_splits']} equal chunks) ({s.spec})")
    if "chunk_tokens" in options:
        return f"every sequence cut alone into {options['chunk_tokens']}-token chunks ({s.spec})"
    if "splits" in options:
        return f"every sequence cut alone into {options['splits']} splits of its own length ({s.spec})"
    return f"no split: one CTA walks each sequence ({s.spec})"


def invariant_entries(entries) -> list[str]:
    return [n for n in entries if tuple(strategies.get(n).search) in INVARIANT_AXES]


def fixed_options(name: str, tile: int) -> list[dict]:
    """The fixed values of an entry's invariant axis; an entry searched by split count that also takes
    fixed chunks (splitkv) is offered both."""
    strategy = strategies.get(name)
    axis = INVARIANT_AXES[tuple(strategy.search)]
    chunks = [{"chunk_tokens": k * tile, **({"max_splits": m} if m else {})} for k in CHUNK_TILES for m in CHUNK_MAX_SPLITS]
    if axis == "splits":
        return [{"splits": s} for s in INVARIANT_SPLITS] + (chunks if "chunk_tokens" in strategy.options_type.names() else [])
    return chunks if axis == "chunk_tokens" else [{}]


def grid_points(shape: DecodeWorkload) -> list[DecodeWorkload]:
    """Uniform batches of `shape`'s model (heads, dtypes, pages, q_len) over the grid, within the cap."""
    points = []
    for b in GRID_BATCHES:
        for c in GRID_CONTEXTS:
            w = replace(shape, batch=b, contexts=(c,) * b)
            if w.kv_bytes() <= GRID_MAX_KV_BYTES:
                points.append(w)
    return points or [replace(shape, batch=1, contexts=(GRID_CONTEXTS[0],))]


class PointPlans:
    """The fixed plans at one grid point, as the search simulates them. Plans that cut the point alike (a
    cap that does not bind, chunks longer than every sequence) are one concrete plan (canonical.concrete_key),
    simulated once: a point's ~110 fixed plans are 20-50 concrete ones. The entry's kernel is resolved once
    per kernel it picks (candidates.kernel_options), as search.py resolves it."""

    def __init__(self, workload: DecodeWorkload, gpu: GpuSpec, user: PlanConfig):
        self.workload, self.gpu, self.user = workload, gpu, user
        self.contexts: dict[tuple, cand.StrategyContext] = {}
        self.seen: dict[int, float] = {}  # concrete plan -> µs

    def predict(self, name: str, options: dict) -> tuple[float, int, int]:
        """(µs, launches, pieces of the longest output) of one fixed plan."""
        picks = cand.kernel_options(strategies.get(name), options)
        key = (name, *picks.items())
        if key not in self.contexts:
            self.contexts[key] = cand.context_for(name, self.workload, self.gpu, self.user, options)
        ctx = self.contexts[key]
        config = replace(ctx.config, **options)
        schedule = ctx.strategy.partition(self.workload, self.gpu, config)
        kernel = ctx.strategy.kernel_for(self.workload, config)
        concrete = canonical.concrete_key(kernel.name if kernel else name, schedule)
        if concrete not in self.seen:
            self.seen[concrete] = simulate(schedule, self.gpu).total_us
        return self.seen[concrete], len(schedule.launches), max(1, schedule.splits, schedule.notes.get("max_chunks", 1))


def predicted_us(name: str, options: dict, workload: DecodeWorkload, gpu: GpuSpec, user: PlanConfig):
    """(µs, launches, pieces of the longest output) of one fixed plan: as the search simulates it."""
    return PointPlans(workload, gpu, user).predict(name, options)


def simplicity(s: Scored) -> tuple:
    return s.launches, s.pieces, s.spec


def score(shape: DecodeWorkload, gpu: GpuSpec, user: PlanConfig, entries: tuple[str, ...],
          fastest_us: Callable[[DecodeWorkload], float]) -> InvariantChoice:
    points = grid_points(shape)
    names = invariant_entries(entries)
    tile = {n: cand.context_for(n, points[0], gpu, user).tile for n in names}
    plans = [(n, o) for n in names for o in fixed_options(n, tile[n])]
    times = np.empty((len(points), len(plans)))  # µs [points, plans]
    longest = max(range(len(points)), key=lambda i: (points[i].max_context, -points[i].batch))
    shape_of_longest = {}  # plan index -> (launches, pieces) at the longest context
    for i, w in enumerate(points):
        at_point = PointPlans(w, gpu, user)
        for j, (n, o) in enumerate(plans):
            times[i, j], launches, pieces = at_point.predict(n, o)
            if i == longest:
                shape_of_longest[j] = (launches, pieces)
    best = np.minimum(np.array([fastest_us(w) for w in points]), times.min(axis=1))
    regret = 100.0 * (times / best[:, None] - 1.0)  # percent [points, plans]
    scored = sorted((Scored(n, tuple(o.items()), float(regret[:, j].mean()), float(np.percentile(regret[:, j], 95)),
                            float(regret[:, j].max()), *shape_of_longest[j]) for j, (n, o) in enumerate(plans)),
                    key=lambda s: (s.mean_pct, s.spec))
    tied = [s for s in scored if s.mean_pct <= scored[0].mean_pct + TIE_PP]
    chunked = [j for j, (n, o) in enumerate(plans) if "chunk_tokens" in o]
    return InvariantChoice(min(tied, key=simplicity), tuple(scored), len(points),
                           length_rule_bound(points, regret[:, chunked]) if chunked else None)


def length_rule_bound(points: list[DecodeWorkload], regret: np.ndarray) -> float:
    """Mean over the grid of the best plan per context (by its mean over that context's batches):
    regret: percent [points, plans] of one kernel family, whose plans a length rule may mix."""
    contexts = np.array([w.max_context for w in points])
    best = np.empty(len(points))
    for c in np.unique(contexts):
        rows = contexts == c
        best[rows] = regret[rows][:, regret[rows].mean(axis=0).argmin()]
    return float(best.mean())


_CHOICES: dict = {}  # (shape, gpu, user, entries) -> InvariantChoice: computed once per process
CACHE_LIMIT = 256


def cached_choices() -> dict:
    """A copy of this process's choices (key -> InvariantChoice): what a planning worker hands back
    (bench/prewarm.py)."""
    return dict(_CHOICES)


def adopt_choices(choices: dict) -> None:
    """Take choices another process made (the same keys, the same calls: bench/prewarm.py)."""
    _CHOICES.update(choices)


def shape_key(workload: DecodeWorkload) -> DecodeWorkload:
    """The workload less what an invariant plan may not depend on: batch and lengths."""
    return replace(workload, batch=1, contexts=(GRID_CONTEXTS[0],))


def choose(workload: DecodeWorkload, gpu: GpuSpec, user: PlanConfig, entries: tuple[str, ...],
           fastest_us: Callable[[DecodeWorkload], float]) -> InvariantChoice | None:
    """The fixed plan of `workload`'s shape among `entries` (None: no invariant entry searched)."""
    if not invariant_entries(entries):
        return None
    key = (shape_key(workload), gpu, user, tuple(entries))
    if key not in _CHOICES:
        if len(_CHOICES) >= CACHE_LIMIT:
            _CHOICES.pop(next(iter(_CHOICES)))
        _CHOICES[key] = score(key[0], gpu, user, tuple(entries), fastest_us)
    return _CHOICES[key]
