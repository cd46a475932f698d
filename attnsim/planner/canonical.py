"""Canonical plans: one name per concrete plan, and of the plans the model cannot tell apart, the simplest.

1. One name (`canonical`): options that make an entry's plan exactly another entry's plan are renamed
   to that entry before the plan is simulated (registry `Strategy.reduces_to`: a hybrid without
   data-parallel outputs is stream-K on the same grid, the same schedule bit for bit); a simulated
   plan is then named by the options its schedule resolved (`Schedule.options`: a stream-K grid above
   the tile count is the tile count), so two specs of one plan are one candidate.
2. The fastest predicted plan runs (`pick`); every plan predicted within the tie band of it
   (planner/tieband.py: the model's expected error) is reported as a tie the model cannot order, with
   the simplest of them named (`Form.irregularity`; 0 is the natural value of each option: a persistent
   grid at the resident capacity, or at every KV tile when there are fewer, 0, a multiple of the SMs 1,
   a multiple of SMs / 8 2, anything else 3; a split count or a chunk in KV tiles that is a power of two,
   or one chunk per output, 0, anything else 2; every option beyond the first 1 more). Only plans
   predicted within RESOLUTION_PCT of the fastest, with its launch count, are one time to any
   measurement, and there the simplest runs.
   Why not the simplest within the band: replayed on the 136 workloads the oracle study measured
   (scripts/canonical_replay.py on results/h200/planner_oracle.csv of 2026-12-05 12:38 UTC, the shipped
   H200 profile), running the simplest plan with the fastest's launch count within the band measured
   1.81% mean regret (p95 7.36%, max 24.6%) against 1.03% (p95 4.24%, max 10.8%) for the fastest
   predicted: the model's order inside its own error band is right more often than the simplest
   plan is fast (on an earlier profile, before per-SM sharing, it was the other way: 2.38 against 2.56%).
   Preferring fewer launches within the band was worse still (3.83% then).
3. One name per concrete plan across entries (`concrete_key`): two entries that plan the same kernel
   launches over the same segments and merges (balanced's fixed chunks on a uniform batch are
   FlashDecoding's split ranges: the same kernels, CTAs, partials and combine) are one candidate, named by
   the earlier entry of the registry (search.distinct).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from attnsim import strategies

GRID_STEPS_PER_SM = 8  # persistent grids are searched in steps of SMs / 8 (candidates.py)


@dataclass(frozen=True)
class Form:
    """How simple a plan is: its launches, how irregular its options are, in words (`traits`)."""

    launches: int
    irregularity: int
    traits: tuple[str, ...]


@dataclass(frozen=True)
class Shape:
    """What the regularity of a plan's options is judged against (one entry on one workload)."""

    capacity: int  # resident CTAs of its attention kernel
    sms: int
    total_tiles: int  # KV tiles of all outputs
    max_tiles: int  # KV tiles of the longest output
    tile: int  # tokens per KV tile


def canonical(name: str, options: dict) -> tuple[str, dict]:
    """(entry, options) under the one name of the plan they describe."""
    reduced = strategies.get(name).reduces_to
    target = reduced(options) if reduced is not None else None
    return target if target is not None else (name, options)


def _grid(grid: int, shape: Shape) -> tuple[int, str]:
    if grid == min(shape.capacity, shape.total_tiles):
        return 0, (f"grid = resident capacity ({grid})" if grid == shape.capacity else f"grid = every KV tile ({grid})")
    if grid % shape.sms == 0:
        return 1, f"grid = {grid // shape.sms} x SMs ({grid})"
    eighths = round(grid * GRID_STEPS_PER_SM / shape.sms)
    if round(eighths * shape.sms / GRID_STEPS_PER_SM) == grid:
        return 2, f"grid = {Fraction(eighths, GRID_STEPS_PER_SM)} x SMs ({grid})"
    return 3, f"grid {grid} (an even cut of the tiles)"


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _splits(splits: int, shape: Shape) -> tuple[int, str]:
    if splits == 1:
        return 0, "no split"
    return (0, f"{splits} splits (a power of two)") if _power_of_two(splits) else (2, f"{splits} splits")


def _chunk(chunk: int, shape: Shape) -> tuple[int, str]:
    tiles = chunk // shape.tile
    if tiles >= shape.max_tiles:
        return 0, "no split (one chunk per output)"
    if _power_of_two(tiles):
        return 0, f"chunk {chunk} tokens ({tiles} tiles, a power of two)"
    return 2, f"chunk {chunk} tokens ({tiles} tiles)"


def _dp(dp: int, shape: Shape) -> tuple[int, str]:
    return 0, f"{dp} outputs data-parallel before stream-K"


JUDGES = {"grid": _grid, "splits": _splits, "chunk_tokens": _chunk, "dp_outputs": _dp}


def form_of(options: dict, launches: int, shape: Shape) -> Form:
    """The Form of a concrete plan with `options` (its schedule's) and `launches` launches."""
    traits = ["1 launch" if launches == 1 else f"{launches} launches (attention + combine)"]
    irregularity = max(0, len(options) - 1)
    for name, value in options.items():
        score, words = JUDGES[name](value, shape) if name in JUDGES else (0, f"{name} {value}")
        irregularity += score
        traits.append(words)
    return Form(launches, irregularity, tuple(traits))


# Predicted times closer than this (%) count as one: there the simpler plan runs instead of the faster. 0: only
# equal predictions (replayed, even 0.1% cost measured regret: 1.03 -> 1.11% mean, p95 4.24 -> 4.64%).
RESOLUTION_PCT = 0.0


def pick(ranked, band_pct: float):
    """(the plan to run, every plan within `band_pct` of the fastest) of `ranked` (fastest first; each with
    `.form` and `.time_us`): the fastest predicted, or the simplest with its launch count within
    RESOLUTION_PCT of it (module docstring, 2)."""
    fastest = ranked[0]
    tied = tuple(e for e in ranked if e.time_us <= fastest.time_us * (1.0 + band_pct / 100.0))
    limit = fastest.time_us * (1.0 + min(band_pct, RESOLUTION_PCT) / 100.0)
    alike = [e for e in tied if e.time_us <= limit and e.form.launches == fastest.form.launches]
    return min(alike, key=lambda e: (e.form.irregularity, e.time_us)), tied


def why(chosen, fastest, tied, band_pct: float) -> str:
    """One sentence: why `chosen` runs, of the plans `tied` within the band of `fastest`."""
    if len(tied) <= 1:
        return f"the fastest predicted; no other plan within the {band_pct:.1f}% tie band"
    simplest = min(tied, key=lambda e: (e.form.launches, e.form.irregularity, e.time_us))
    lead = "the fastest predicted" if chosen is fastest else f"the simplest plan predicted as fast as {fastest.spec}"
    alternative = ("" if simplest is chosen else
                   f"; the simplest of them, {simplest.spec} ({', '.join(simplest.form.traits) or 'no options'}), "
                   f"is predicted {100.0 * (simplest.time_us / chosen.time_us - 1.0):.1f}% slower")
    return (f"{lead}; {len(tied) - 1} other plan(s) within the {band_pct:.1f}% tie band, a difference the model "
            f"cannot resolve{alternative} (measured on the oracle study, running the fastest predicted "
            f"beats running the simplest tied plan: docs/planner.md)")


def concrete_key(kernel: str, schedule) -> int:
    """A hash of what runs: the attention kernel's name, every launch (name, cost family, grid, CTA
    resources), the attention launch's segments and the merges (Reductions). Equal keys: one plan (64-bit
    hashes compared within one search: Python's own hash of the bytes, ~4x cheaper than a digest)."""
    launches = schedule.launches
    names = "|".join([kernel, *(f"{l.name}:{l.family}" for l in launches)])
    sizes = [(l.grid, l.resources.threads, l.resources.regs_per_thread, l.resources.smem_bytes) for l in launches]
    segs, red = schedule.attention.segments, schedule.reductions
    rows = () if segs is None else (segs.cta, segs.seq, segs.kv_head, segs.q_block, segs.first_tile, segs.n_tiles,
                                    segs.role)
    arrays = [np.asarray(sizes, np.int64).ravel(), *rows, red.peer_offsets, red.peer_cta, red.host_cta]
    lengths = np.array([len(x) for x in arrays], np.int64)  # so that no two layouts concatenate alike
    body = np.concatenate([lengths, *(np.asarray(x, np.int64) for x in arrays)])
    return hash((names, body.tobytes()))
