"""The oracle study's workloads and, per workload, the dense set of plans to measure.

Workloads (fixed seed, none in the calibration set or the standard sweep):
- 112 uniform batches: batch log-uniform in 1..64, a GQA group uniform in 1..8 over 2, 4 or 8 kv-heads,
  or MQA (one kv-head, 8/16/32 q-heads), head_dim 64 or 128, context log-uniform in 512..512k
  (never a power of two nor a calibration length);
- 24 ragged batches, 8 of each mix: one long (64k..512k) + many short (256..4k), bimodal (half
  1k..2k, half 32k..128k), heavy-tailed (Pareto, alpha 1.2, from 512 tokens, capped at 256k);
- every point's padded K+V under MAX_KV_BYTES, so a row stays within the timing budget.

Plans per workload (plan specs for bench_run's `candidates`): the planner's choice as `auto`, the
batch-invariant `auto`, the tuned `auto:tune=3` (the fastest measured of the model's 3 fastest and the invariant
plan), the tuned batch-invariant `auto:batch_invariant=1,tune=3` (its shape's rule measured best of the model's 3
best on the shape's own grid: bench/tune_invariant.py), each default entry with its defaults, every heuristic's choice, the
planner's three nearest runners-up, split counts and persistent grids on a grid of values (within
the planner's own bounds), and the modelled/timed third-party baselines; plans that resolve to the
same concrete plan (same entry, grid and predicted time) are timed once, the `auto` rows always.
"""

from __future__ import annotations

import math

import numpy as np

from attnsim import strategies
from attnsim.bench.calibration import calibration_sweep
from attnsim.bench.sweep import padded_kv_bytes, standard_sweep
from attnsim.planner import candidates as cand
from attnsim.planner.search import Evaluator, search
from attnsim.planner.choose import make_plan, planned_name
from attnsim.plans.spec import spec_strategy
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload

SEED = 2026
UNIFORM_POINTS = 112
RAGGED_PER_MIX = 8
MAX_KV_BYTES = 3e9  # padded K + V per point
SPLIT_GRID = (2, 3, 4, 6, 8, 12, 16, 24, 32)
GRID_FRACTIONS = (1 / 2, 1, 3 / 2, 2)  # x SMs, persistent grids up to capacity
RUNNERS_UP = 3
TUNED = 3  # auto:tune=3: the fastest measured of the model's 3 fastest plans and the invariant one (bench/tune.py)
MIXES = ("one-long", "bimodal", "heavy-tail")


def head_shape(rng) -> tuple[int, int]:
    """(q_heads, kv_heads): a GQA group 1..8 over 2/4/8 kv-heads, or MQA (1 in 5)."""
    if rng.random() < 0.2:
        return int(rng.choice([8, 16, 32])), 1
    kv = int(rng.choice([2, 4, 8]))
    return kv * int(rng.integers(1, 9)), kv


def log_uniform(rng, low: float, high: float, size=None):
    return np.exp(rng.uniform(math.log(low), math.log(high), size))


def ragged_lengths(rng, mix: str, batch: int) -> list[int]:
    if mix == "one-long":
        return [int(log_uniform(rng, 65536, 524288))] + [int(x) for x in log_uniform(rng, 256, 4096, batch - 1)]
    if mix == "bimodal":
        half = batch // 2
        return [int(x) for x in np.concatenate((rng.uniform(1024, 2048, half), rng.uniform(32768, 131072, batch - half)))]
    return [int(min(512 * (1 + rng.pareto(1.2)), 262144)) for _ in range(batch)]


def _taken() -> set:
    """Identities of the calibration and standard-sweep points (any dtype)."""
    return {identity(w) for w in calibration_sweep() + standard_sweep()}


def identity(w: DecodeWorkload) -> tuple:
    return (w.batch, w.q_heads, w.kv_heads, w.head_dim, w.contexts)


def _fresh(w: DecodeWorkload, taken: set) -> bool:
    return identity(w) not in taken and padded_kv_bytes(w) <= MAX_KV_BYTES


def oracle_workloads(dtype: str = "float16") -> list[DecodeWorkload]:
    rng, taken, points = np.random.default_rng(SEED), _taken(), []
    while len(points) < UNIFORM_POINTS:
        qh, kvh = head_shape(rng)
        batch, context = int(round(log_uniform(rng, 1, 64))), int(log_uniform(rng, 512, 524288))
        w = DecodeWorkload.build(batch, qh, kvh, int(rng.choice([64, 128])), context, dtype=dtype)
        if context & (context - 1) and _fresh(w, taken):
            points.append(w)
    for mix in MIXES:
        found = 0
        while found < RAGGED_PER_MIX:
            qh, kvh = head_shape(rng)
            batch = int(rng.integers(4, 49))
            w = DecodeWorkload.build(batch, qh, kvh, int(rng.choice([64, 128])), ragged_lengths(rng, mix, batch),
                                     dtype=dtype)
            if _fresh(w, taken):
                points.append(w)
                found += 1
    return points


def _entries_with(axes: tuple[str, ...]) -> tuple[str, ...]:
    return strategies.names(lambda s: s.candidate and s.search == axes)


def grid_specs(w: DecodeWorkload, gpu: GpuSpec, ev: Evaluator) -> list[str]:
    """Split counts (within one resident wave and the longest sequence's tiles) and persistent grids."""
    specs = []
    for name in _entries_with(("splits",)):
        ctx = ev.context(name)
        cap = min(int(ctx.tiles.max()), max(1, ctx.capacity // ctx.outputs))
        specs += [f"{name}:splits={s}" for s in SPLIT_GRID if s <= cap]
    for name in _entries_with(("grid",)):
        ctx = ev.context(name)
        grids = {min(ctx.capacity, round(f * gpu.sm_count)) for f in GRID_FRACTIONS}
        specs += [f"{name}:grid={g}" for g in sorted(grids)]
    return specs


def oracle_candidates(w: DecodeWorkload, gpu: GpuSpec) -> list[str]:
    """Plan specs to time on `w` (see the module docstring), `auto` first."""
    planned = (planned_name(),)
    result = search(w, gpu, PlanConfig(tune=RUNNERS_UP + 1))  # (tune: the search keeps the model's fastest plans)
    ev = Evaluator(w, gpu, PlanConfig())
    autos = [*planned, *(f"{p}:batch_invariant=1" for p in planned), *(f"{p}:tune={TUNED}" for p in planned),
             *(f"{p}:batch_invariant=1,tune={TUNED}" for p in planned)]
    specs = [*strategies.default_names(), *strategies.names(lambda s: s.candidate and not s.default)]
    specs += [h.plan.spec for h in result.heuristics] + [e.spec for e in result.ranked if e is not result.chosen][:RUNNERS_UP]
    specs += grid_specs(w, gpu, ev) + list(strategies.names(lambda s: s.baseline))
    return autos + distinct_plans(specs, w, gpu)


def fingerprint(spec: str, w: DecodeWorkload, gpu: GpuSpec) -> tuple:
    """What identifies the concrete plan of a spec: (entry, grid, predicted time); an unmodelled
    baseline is its own spec."""
    if not strategies.get(spec_strategy(spec)).predictable:
        return (spec,)
    schedule = make_plan(spec, w, gpu).schedule
    return schedule.strategy, schedule.grid, simulate(schedule, gpu).total_us


def distinct_plans(specs: list[str], w: DecodeWorkload, gpu: GpuSpec, taken=(), skip: tuple = ()) -> list[str]:
    """One spec per concrete plan (the first one), none of whose fingerprints are in `taken`; a spec whose
    planning raises one of `skip` (e.g. InputError: a plan the limits refuse) is left out."""
    seen, kept = set(taken), []
    for spec in dict.fromkeys(specs):
        try:
            key = fingerprint(spec, w, gpu)
        except skip:
            continue
        if key not in seen:
            seen.add(key)
            kept.append(spec)
    return kept

