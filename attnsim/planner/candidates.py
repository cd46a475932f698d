"""The candidate plans the planner searches, per registry entry, from the option axes it sweeps
(`Strategy.search`). Each axis has a bounded value set:

- splits (split-KV): 1..16, then 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, at most the KV
  tiles of the longest sequence and one resident wave (capacity // outputs: more splits only add a
  tail wave); a count whose ceil(tiles / s) equals that of the last smaller count kept is skipped (FA2's
  eligibility rule: the same split size with more, emptier CTAs). A plan merged by its last arrival has no combine
  launch: its bound is the longest split's stream plus the merge of all s partials (host path).
- grid (persistent, in-kernel reduction): multiples of SMs / 4 up to the resident capacity, the
  capacity itself, and the smallest grid of each of the three lowest per-CTA shares
  (ceil(total / share): an even cut), never above the tile count.
- grid + dp_outputs (hybrid): grids SMs and capacity; dp = k x grid for k in full, full - 1 (the
  default: last full wave to stream-K), full - 2, full // 2 (full = outputs // grid), k >= 1.
- chunk_tokens (balanced split-KV): the chunk that fits grid targets capacity x {1/8, 1/4, 1/2,
  3/4, 1, 3/2, 2} (FlashInfer's search, chunk_for_grid), plus a fixed 16-tile chunk. Split-KV, which
  also runs fixed chunks in one launch (balanced's LPT grid, merged by the last arrival), is searched
  on these chunks as well as on split counts for a ragged batch (where its LPT order differs from the
  split-major grid; a uniform batch's chunks are some split count's pieces), so the batch-invariant
  plans it offers are not predicted faster than the unconstrained choice.
- no axis (fa2): the entry's defaults.

Pinned options (`attnsim plan --grid 132`) replace an axis by their value; a grid pin is the only
target of a chunk search. Each Candidate carries what bounds.py needs: an upper bound on its
attention CTAs and a lower bound on its busiest CTA's K+V bytes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.planner import canonical
from attnsim.plans.plan import options_for, plan_config
from attnsim.plans.spec import plan_spec
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import check_coresident, resident_capacity
from attnsim.simulator.partition import balanced, common
from attnsim.simulator.partition.options import PIN_FIELDS
from attnsim.simulator.workload import DecodeWorkload

SPLIT_COUNTS = tuple(range(1, 17)) + (20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128)
GRID_STEPS_PER_SM = 8  # persistent grids in steps of SMs / 8
EVEN_SHARES = 3  # persistent grids that cut the tiles evenly, for the lowest shares
CHUNK_TARGETS = (1 / 8, 1 / 4, 1 / 2, 3 / 4, 1, 3 / 2, 2)  # x resident capacity
DP_WAVES_BACK = (0, 1, 2)  # dp = (full - k) waves of the grid, plus full // 2
# A fixed chunk of this many KV tiles is also searched (the kernel's 16 KB K tile: 1024 tokens at
# d 128 fp16, 2048 at d 64): batch-invariant mode ran it until its plan was chosen per model shape
# (invariant.py); it stays a candidate of the unconstrained search, whose choices it is part of.
FIXED_CHUNK_TILES = 16


@dataclass(frozen=True)
class Candidate:
    strategy: str
    options: tuple[tuple[str, int], ...]  # the PlanConfig fields the search set, in order
    max_ctas: int  # upper bound on the attention launch's CTAs
    cta_bytes: float  # lower bound on the busiest CTA's K+V bytes
    partials: int = 0  # a combine launch merges at least this many partials of one output (0: none)
    host_peers: int = 0  # an in-kernel merge of the longest output reads this many peers' partials
    peer_bytes: float = 0.0  # ... after one of them streamed at least this many bytes
    wave_cta_bytes: float = 0.0  # a lower bound on every CTA's K+V bytes, when max_ctas is the exact grid (0: unknown)
    # Every output is split and merged in the launch: whichever CTA streams K+V last leaves a merge of at least
    # this many partials (host_peers' count) after it (0: some output is written whole, or a combine launch merges)
    tail_peers: int = 0

    @functools.cached_property
    def spec(self) -> str:  # cached: the search asks it of each candidate several times
        return plan_spec(self.strategy, dict(self.options))


@dataclass(frozen=True, eq=False)
class StrategyContext:
    """One entry resolved for one workload: its kernel's tile, CTA and resident capacity."""

    strategy: strategies.Strategy
    workload: DecodeWorkload
    gpu: GpuSpec
    config: common.PlanConfig  # resolved: tile, warps, stages, resources
    capacity: int  # resident CTAs of its attention kernel
    tiles: np.ndarray  # int64 [n_outputs]: KV tiles per output
    tokens: np.ndarray  # int64 [n_outputs]: KV tokens per output (its last tile may be short)
    bytes_per_token: float  # K+V bytes of one token of one output

    @property
    def tile(self) -> int:
        return self.config.kv_tile_tokens

    @property
    def outputs(self) -> int:
        return len(self.tiles)

    @functools.cached_property
    def max_tiles(self) -> int:
        """KV tiles of the longest output."""
        return int(self.tiles.max())

    @functools.cached_property
    def total_tiles(self) -> int:
        return int(self.tiles.sum())

    # Candidates bound their CTAs' bytes from below (bounds.py), so they count tokens, not tiles x tile: a
    # sequence's last tile may be short, and the engine bills the tokens (common.segment_kv_bytes)
    @functools.cached_property
    def max_tokens(self) -> float:
        """KV tokens of the longest output."""
        return float(self.tokens.max())

    @functools.cached_property
    def total_tokens(self) -> float:
        return float(self.tokens.sum())

    @functools.cached_property
    def short(self) -> int:
        """Tokens the shortest last tile of an output lacks (0 when every context is whole tiles)."""
        return self.tile - int((self.tokens - (self.tiles - 1) * self.tile).min())

    def range_tokens(self, tiles: int, ends: int | None = None) -> float:
        """At least how many tokens any `tiles` consecutive tiles of the flattened (output, tile) order hold:
        each output's end inside them (`ends`, by default at most tiles // the fewest tiles of an output + 1)
        may cut a tile short."""
        ends = tiles // int(self.tiles.min()) + 1 if ends is None else ends
        return float(max(0, tiles * self.tile - min(ends, tiles) * self.short))

    @functools.cached_property
    def shape(self) -> canonical.Shape:
        """What canonical.form_of names this entry's plans by (asked per simulated candidate)."""
        return canonical.Shape(self.capacity, self.gpu.sm_count, self.total_tiles, self.max_tiles, self.tile)

    def candidate(self, max_ctas: int, cta_tokens: float, partials: int = 0, host_peers: int = 0,
                  peer_tokens: float = 0.0, wave_cta_tokens: float = 0.0, tail_peers: int = 0, **options) -> Candidate:
        per_token = self.bytes_per_token
        return Candidate(self.strategy.name, tuple(options.items()), int(max_ctas), cta_tokens * per_token,
                         partials if partials > 1 else 0, host_peers, peer_tokens * per_token,
                         wave_cta_tokens * per_token, tail_peers)


def context_for(name: str, workload: DecodeWorkload, gpu: GpuSpec, user: common.PlanConfig,
                options: dict | None = None) -> StrategyContext:
    """Resolve the entry once (kernel shape, compiled resources: the plans' resolver); every candidate
    varies only its options. `options`: a candidate's, where they pick another kernel of the entry
    (kernel_options: split-KV's fixed chunks run the one-segment kernel, with its own resources)."""
    strategy = strategies.get(name)
    chosen = options_for(strategy, replace(without_pins(user), **kernel_options(strategy, options)))
    config, _ = plan_config(strategy, workload, gpu, chosen)
    outs = common.outputs(workload, config.kv_tile_tokens)
    per_token = workload.kv_bytes() / (sum(workload.contexts) * workload.kv_heads)
    return StrategyContext(strategy, workload, gpu, config, resident_capacity(gpu, config.resources), outs.tiles,
                           outs.context, per_token)


def kernel_options(strategy: strategies.Strategy, options: dict | None) -> dict:
    """The options of a candidate that choose which of the entry's kernels runs it ({} for its default)."""
    if strategy.chunk_kernel is not None and (options or {}).get("chunk_tokens") is not None:
        return {"chunk_tokens": options["chunk_tokens"]}
    return {}


def fixed_chunk(ctx: StrategyContext) -> int:
    """The fixed chunk in tokens: a function of the KV tile (head_dim, dtype) only."""
    return FIXED_CHUNK_TILES * ctx.tile


def distinct_split_sizes(counts: list[int], max_tiles: int) -> list[int]:
    """`counts` (increasing) less each count whose split size, ceil(max_tiles / s) tiles, equals that of the last
    count kept: FA2's eligibility rule (the same split size with more, emptier CTAs) applied between the counts
    searched. Checked against s - 1 instead, a count past 16 (where the searched counts are sparse) was dropped
    for a neighbour never searched: at 275 tiles 24 and 32 (the sizes of 23 and 31), the fastest measured."""
    kept = []
    for s in counts:
        if not kept or -(-max_tiles // s) != -(-max_tiles // kept[-1]):
            kept.append(s)
    return kept


def split_values(ctx: StrategyContext, pins: dict) -> list[Candidate]:
    max_tiles = int(ctx.tiles.max())
    if "splits" in pins:
        counts = [pins["splits"]]
    else:
        cap = min(max_tiles, max(1, ctx.capacity // ctx.outputs))
        counts = distinct_split_sizes([s for s in SPLIT_COUNTS if s <= cap], max_tiles)
    longest = ctx.max_tokens
    used = [int(non_empty_splits(max_tiles, s)) for s in counts]  # of the longest output
    wave = [uniform_split_tokens(ctx, s, u) for s, u in zip(counts, used)]
    if ctx.strategy.last_arrival_merge:  # no combine launch: the split that ends last merges them all
        fewest = [int(non_empty_splits(ctx.tiles, s).min()) for s in counts]  # of the output with the fewest
        return [ctx.candidate(ctx.outputs * s, longest / s, 0, u if s > 1 else 0, longest / s, x,
                              f if s > 1 and f > 1 else 0, splits=s)
                for s, u, x, f in zip(counts, used, wave, fewest)]
    return [ctx.candidate(ctx.outputs * s, longest / s, u, wave_cta_tokens=x, splits=s)
            for s, u, x in zip(counts, used, wave)]


def non_empty_splits(tiles, splits: int):
    """Non-empty splits of outputs of `tiles` KV tiles cut by FA2's ranges (ceil(tiles / splits) tiles each)."""
    return -(-tiles // -(-tiles // splits))


def uniform_split_tokens(ctx: StrategyContext, splits: int, used: int) -> float:
    """KV tokens of each CTA of `splits` splits at least, where every output has the same tokens and none of its
    splits is empty (`used`, the non-empty ones, is `splits`; FA2's ranges: ceil(tiles / splits) tiles each, the
    last the rest); 0 otherwise."""
    tokens = ctx.max_tokens
    if tokens != float(ctx.tokens.min()) or used < splits:
        return 0.0
    per = -(-ctx.max_tiles // splits)
    return float(min(per * ctx.tile, tokens - (splits - 1) * per * ctx.tile))


def persistent_grids(ctx: StrategyContext) -> list[int]:
    """Grid sizes for a persistent (co-resident) grid: SMs / 8 steps, capacity, even cuts — never below
    one CTA per SM (or the tile count, when there are fewer tiles than SMs). Below it a persistent
    grid idles SMs by construction, and the H200 calibration residuals put the model 4-5% optimistic
    there for stream-K (grids 33 and 66: -5.0% and -4.2% mean error, against +1.5% at 140-264),
    which is enough to bias the argmin towards them."""
    total, sms = int(ctx.tiles.sum()), ctx.gpu.sm_count
    grids = {round(k * sms / GRID_STEPS_PER_SM) for k in range(1, GRID_STEPS_PER_SM * ctx.capacity // sms + 1)}
    lowest = -(-total // ctx.capacity)
    grids |= {-(-total // share) for share in range(lowest, lowest + EVEN_SHARES)}
    grids.add(ctx.capacity)
    floor = min(sms, total, ctx.capacity)
    return sorted({min(g, total) for g in grids if floor <= min(g, total) and 0 < g <= ctx.capacity})


def grid_values(ctx: StrategyContext, pins: dict) -> list[Candidate]:
    total = int(ctx.tiles.sum())
    grids = [pins["grid"]] if "grid" in pins else persistent_grids(ctx)
    found = []
    for g in grids:
        share = -(-total // min(g, total))  # tiles of the largest chunk; chunks differ by at most one
        spans = -(-int(ctx.tiles.max()) // share)  # the longest output covers at least this many chunks
        middle = ctx.range_tokens(share - 1, 1) if spans > 2 else 0.0  # a peer wholly inside it streams this first
        ctas = min(g, total)  # exactly, resident at once; each CTA >= total // ctas tiles
        fewest = -(-int(ctx.tiles.min()) // share)  # the shortest output covers at least this many chunks
        found.append(ctx.candidate(ctas, ctx.total_tokens / g, 0, spans - 1, middle, ctx.range_tokens(total // ctas),
                                   fewest - 1, grid=g))
    return found


def dp_values(ctx: StrategyContext, pins: dict) -> list[Candidate]:
    """Hybrid (grid, dp_outputs) pairs with at least one DP wave (dp = 0 is stream-K's plan)."""
    total_tokens = ctx.total_tokens
    grids = [pins["grid"]] if "grid" in pins else sorted({ctx.gpu.sm_count, ctx.capacity})
    found = []
    for g in (g for g in grids if g <= ctx.outputs):
        full = ctx.outputs // g
        waves = [pins["dp_outputs"] // g] if "dp_outputs" in pins else {full - k for k in DP_WAVES_BACK} | {full // 2}
        found += [ctx.candidate(g, total_tokens / g, grid=g, dp_outputs=k * g) for k in sorted(waves) if k >= 1]
    return found


def chunk_counts(ctx: StrategyContext, chunk_tokens: int) -> np.ndarray:
    """Chunks per output (int64 [n_outputs]) for a chunk of `chunk_tokens` (a multiple of the tile)."""
    return -(-ctx.tiles // (chunk_tokens // ctx.tile))


def chunk_values(ctx: StrategyContext, pins: dict) -> list[Candidate]:
    if "chunk_tokens" in pins:
        chunks = {pins["chunk_tokens"]}
    else:
        targets = [pins["grid"]] if "grid" in pins else [max(1, round(ctx.capacity * f)) for f in CHUNK_TARGETS]
        chunks = set(balanced.chunks_for_grids(ctx.workload, ctx.tile, targets))
        fixed = min(fixed_chunk(ctx), int(ctx.tiles.max()) * ctx.tile)
        if chunk_counts(ctx, fixed).sum() <= CHUNK_TARGETS[-1] * ctx.capacity:  # within the targets' waves
            chunks.add(fixed)
    return [chunk_candidate(ctx, c, min(c, ctx.max_tokens)) for c in sorted(chunks)]


def chunk_candidate(ctx: StrategyContext, chunk_tokens: int, cta_tokens: float) -> Candidate:
    """A fixed-chunk plan: its longest output's chunks are merged by a combine launch or, for an entry
    merged by its last arrival, by the chunk that ends last (an output of one chunk is written directly)."""
    counts = chunk_counts(ctx, chunk_tokens)
    ctas, pieces = int(counts.sum()), int(counts.max())
    if ctx.strategy.last_arrival_merge:
        fewest = int(counts.min())
        return ctx.candidate(ctas, cta_tokens, 0, pieces if pieces > 1 else 0, cta_tokens,
                             tail_peers=fewest if fewest > 1 else 0, chunk_tokens=chunk_tokens)
    return ctx.candidate(ctas, cta_tokens, pieces, chunk_tokens=chunk_tokens)


def default_values(ctx: StrategyContext, pins: dict) -> list[Candidate]:
    return [ctx.candidate(ctx.outputs, ctx.max_tokens)]


def candidates_for(ctx: StrategyContext, pins: dict) -> list[Candidate]:
    """The entry's candidates: one generator per combination of search axes."""
    axes = set(ctx.strategy.search)
    if "dp_outputs" in axes:
        return dp_values(ctx, pins)
    if "splits" in axes:  # an entry that also takes fixed chunks (splitkv): both axes, unless one is pinned
        # (a uniform batch's chunks cut every output as some split count does: chunks only when ragged)
        chunked = "chunk_tokens" in ctx.strategy.options_type.names() and "splits" not in pins and (
            "chunk_tokens" in pins or ctx.workload.is_ragged)
        splits = [] if "chunk_tokens" in pins else split_values(ctx, pins)
        return splits + (chunk_values(ctx, pins) if chunked else [])
    if "chunk_tokens" in axes:
        return chunk_values(ctx, pins)
    if "grid" in axes:
        return grid_values(ctx, pins)
    return default_values(ctx, pins)


def searched_entries(names, pins: dict, workload: DecodeWorkload | None = None) -> list[str]:
    """Candidate entries (all of ours for `workload`, or `names`) that take every pinned option."""
    ours = strategies.candidates(workload)
    return [n for n in names or ours if n in ours and set(pins) <= strategies.get(n).options]


def check_pins(ctx: StrategyContext, pins: dict) -> None:
    """Pinned options the entry cannot run: one InputError naming the field."""
    max_tiles = int(ctx.tiles.max())
    if pins.get("splits", 0) > max_tiles:
        raise InputError("splits", f"{pins['splits']} exceeds the {max_tiles} KV blocks ({ctx.tile}-token tiles) "
                                   f"of the longest sequence")
    if ctx.strategy.in_kernel_reduction:
        check_coresident(pins.get("grid", 0), ctx.capacity, ctx.gpu.sm_count, ctx.strategy.name)
    chunk = pins.get("chunk_tokens")
    if chunk is not None and chunk % ctx.tile:
        raise InputError("chunk_tokens", f"must be a multiple of the KV tile ({ctx.tile} tokens), got {chunk}")


def pins_of(options: common.PlanConfig) -> dict:
    return {k: v for k, v in options.options().items() if k in PIN_FIELDS}


def without_pins(options: common.PlanConfig) -> common.PlanConfig:
    """The user's options less the pinned search values (kernel shape, batch_invariant stay)."""
    return replace(options, **dict.fromkeys(PIN_FIELDS))
