"""Canonical plans: one name per concrete plan, and of the plans the model cannot tell apart, the simplest.

1. One name (`canonical`): options that make an entry's plan exactly another entry's plan are renamed
   to that entry before the plan is simulated (registry `Strategy.reduces_to`: a hybrid without
   data-parallel outputs is stream-K on the same grid, the same schedule bit for bit); a simulated
   plan is then named by the options its schedule resolved (`Schedule.options`: a stream-K grid above
   the tile count is the tile count), so two specs of one plan are one candidate.
2. The simplest within the tie band (`pick`): every plan predicted within the band of the fastest
   (planner/tieband.py: the model's expected error) is a tie the model cannot order. Of the ties with
   as many launches as the fastest, the planner runs the one with the most regular options
   (`Form.irregularity`; 0 is the natural value of each option): a persistent grid at the resident
   capacity (or at every KV tile, when there are fewer) 0, a multiple of the SMs 1, a multiple of
   SMs / 8 2, anything else (an even cut of the tiles) 3; a split count, or a chunk in KV tiles, that
   is a power of two (or one chunk per output) 0, anything else 2; every option beyond the first
   1 more (a hybrid's two phases); then the least predicted time.
   Why the launch count is not rounded as well: replayed on the 136 workloads the oracle study
   measured (scripts/canonical_replay.py on results/h200/planner_oracle.csv, the shipped H200
   profile), preferring fewer launches within the band raised the measured regret of the pick from
   2.56% to 3.83% (mean; p95 10.4% -> 13.6%): where the model calls a one-launch plan a tie of a
   two-launch one, the two-launch plan was the faster. Rounding the options within the launch count
   lowered it to 2.38% (p95 9.95%; max 17.5% against 17.2%). What the rounding costs is reported
   (`why`): the chosen plan's predicted time over the fastest's, at most the band.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

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


def pick(ranked, band_pct: float):
    """(the simplest plan within `band_pct` of the fastest with the fastest's launch count, every plan
    within the band) of `ranked` (fastest first; each with `.form` and `.time_us`)."""
    fastest = ranked[0]
    limit = fastest.time_us * (1.0 + band_pct / 100.0)
    tied = [e for e in ranked if e.time_us <= limit]
    alike = [e for e in tied if e.form.launches == fastest.form.launches]
    return min(alike, key=lambda e: (e.form.irregularity, e.time_us)), tuple(tied)


def why(chosen, fastest, tied, band_pct: float) -> str:
    """One sentence: why `chosen` runs, of the plans `tied` within the band of `fastest`."""
    launches = f"{fastest.form.launches}-launch"
    others = f"; {len(tied) - 1} other plan(s) tie" if len(tied) > 1 else ""
    if chosen is fastest:
        if len(tied) <= 1:
            return f"the fastest predicted; no other plan within the {band_pct:.1f}% tie band"
        return (f"the fastest predicted, and no {launches} plan within the {band_pct:.1f}% tie band is simpler "
                f"({', '.join(chosen.form.traits[1:]) or 'no options'}){others}")
    cost = 100.0 * (chosen.time_us / fastest.time_us - 1.0)
    return (f"the simplest {launches} plan within the {band_pct:.1f}% tie band: {', '.join(chosen.form.traits[1:])} "
            f"instead of the fastest's {', '.join(fastest.form.traits[1:])} ({fastest.spec}, predicted {cost:.1f}% "
            f"faster, a difference the model cannot resolve){others}")
