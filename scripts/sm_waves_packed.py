"""Every SM past one wave, exactly: the reference for the engine's one-clock packed share (CPU; not the engine).

    PYTHONPATH=. python3 scripts/sm_waves_packed.py --gpu h200 results/h200/bench.csv [MORE.csv ...]
        [--oracle results/h200/planner_oracle.csv]

The CTA traces (docs/validation.md, "Our attention launches traced CTA by CTA") show the block scheduler refilling
the slots that free first, up to three CTAs an SM, and those SMs' CTAs sharing their SM's stream. The engine
prices that with its one clock (engine._waves, sm_wave.packed_rate: the streaming CTAs counted as packed
slots / SMs to an SM under the per-SM limit). Here every SM is kept instead: CTA i of the first wave on slot i
(SM i % S); each later CTA on the slot that freed first, an SM's slots refilled together (slots freed at one
instant: SM by SM); between events the SMs' asks and shares are load_rates' (the per-SM limit and tile-math
caps), and an SM's CTAs split its share. The profile's costs as shipped.

Prints per sweep the MAPE per strategy (the engine's, then every SM's) and the mean error by waves (grid over
the resident slots), uniform batches; with --oracle, the oracle replay's regret both ways (oracle_replay.py).
A pure-Python event loop over every SM: ~2x the planner's time, 0.5 s for a 4,096-CTA launch.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import math

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.profiles import resolve_gpu
from attnsim.simulator import cost, engine
from attnsim.simulator.occupancy import CtaResources, resident_capacity
from attnsim.validation.compare import predict_measurements
from attnsim.validation.measurements import load_measurements

WAVE_BINS = [0, 0.5, 1.0, 1.25, 1.5, 2, 3, 6, np.inf]


def packed_waves(work: np.ndarray, fixed: np.ndarray, slots: int, bw: cost.BandwidthModel):
    """(start, stream end, slot) of every CTA [grid], µs from the launch's start: `work` bytes [grid] streamed
    then `fixed` µs [grid] holding the slot, on `slots` slots (slot s on SM s % S)."""
    sms, grid = bw.sm_count, len(work)
    start, stream_end, slot = np.zeros(grid), np.zeros(grid), np.zeros(grid, np.int64)
    left = [dict() for _ in range(sms)]  # per SM: CTA -> bytes still to stream
    for i in range(min(slots, grid)):  # the first wave: round-robin over the SMs
        left[i % sms][i], slot[i] = float(work[i]), i
    releases, free = [], []  # heaps: (t, SM, slot) of fixed tails holding a slot; (t, order, SM, slot) freed
    rates_for, t, order, nxt = {}, 0.0, 0, min(slots, grid)
    while any(left) or releases or (free and nxt < grid):
        while free and nxt < grid:  # the slot that freed first takes the next CTA
            _, _, s, sl = heapq.heappop(free)
            left[s][nxt], start[nxt], slot[nxt] = float(work[nxt]), t, sl
            nxt += 1
        rate, dt = _sm_rates(left, bw, rates_for)
        if releases:
            dt = min(dt, releases[0][0] - t)
        t += dt
        for s, ctas in enumerate(left):
            for cta in [c for c, b in ctas.items() if b - rate[s] * dt <= 1e-9 * max(work[c], 1.0)]:
                del ctas[cta]
                stream_end[cta] = t
                heapq.heappush(releases, (t + float(fixed[cta]), s, int(slot[cta])))
            for cta in ctas:
                ctas[cta] -= rate[s] * dt
        while releases and releases[0][0] <= t + 1e-12:  # freed at one instant: popped SM by SM
            _, s, sl = heapq.heappop(releases)
            order += 1
            heapq.heappush(free, (t, order, s, sl))
    return start, stream_end, slot


def _sm_rates(left: list, bw: cost.BandwidthModel, rates_for: dict) -> tuple[list, float]:
    """(bytes/µs of a CTA on each SM [S], µs to the next CTA's stream end) under load_rates' sharing."""
    held = [len(c) for c in left]
    depth = max(held)
    if not depth:
        return [0.0] * len(left), math.inf
    holding = [0] * (depth + 1)
    for k in held:
        holding[k] += 1
    if depth + 1 not in rates_for:
        rates_for[depth + 1] = bw.load_rates(depth + 1)
    per_k = rates_for[depth + 1](holding)
    rate = [per_k[k] for k in held]
    return rate, min(b / rate[s] for s, c in enumerate(left) for b in c.values())


class _LinearClock:
    """When a CTA had streamed some of its bytes: linear between its start and stream end (hosts' peers)."""

    def __init__(self, start: np.ndarray, stream_end: np.ndarray, work: np.ndarray):
        self.start, self.stream_end, self.work = start, stream_end, work

    def time_at(self, cta: np.ndarray, done_bytes: np.ndarray) -> np.ndarray:
        share = np.clip(done_bytes / np.maximum(self.work[cta], 1e-9), 0.0, 1.0)
        return self.start[cta] + (self.stream_end[cta] - self.start[cta]) * share


@contextlib.contextmanager
def packed_engine():
    """engine._dispatch with launches past their slots under a per-SM limit run by packed_waves."""
    shipped = engine._dispatch

    def dispatch(schedule, launch, work, fixed, slots, bw, fast_slots=0):  # every SM alike: no fast SMs' lead
        if launch.grid <= slots or bw.sm_stream_rate == math.inf:
            return shipped(schedule, launch, work, fixed, slots, bw, fast_slots)
        start, stream_end, slot = packed_waves(work, fixed, slots, bw)
        clock = _LinearClock(start, stream_end, work)
        ready = stream_end
        if launch.name == "attention" and len(schedule.reductions):
            ready = engine._host_ready(schedule, stream_end, clock)
        return start, stream_end, ready, slot, clock

    engine._dispatch = dispatch
    try:
        yield
    finally:
        engine._dispatch = shipped


def waves_of(rows: pd.DataFrame, gpu) -> pd.Series:
    """The attention launch's grid over its resident slots (occupancy.resident_capacity of each row's recorded
    warps, registers and shared memory)."""
    slots = [resident_capacity(gpu, CtaResources(int(w) * 32, int(r), int(m)))
             for w, r, m in zip(rows["num_warps"], rows["registers"], rows["smem_bytes"])]
    return rows["grid"] / np.array(slots, np.float64)


def score_sweep(path: str, gpu) -> None:
    frame = load_measurements(path)
    ours = list(strategies.candidates()) + ["auto"]
    frame = frame[frame["strategy"].isin(ours) & frame["status"].eq("ok")].reset_index(drop=True)
    shipped = predict_measurements(frame, gpu)
    with packed_engine():
        packed = predict_measurements(frame, gpu)
    mape = lambda r: {s: round(v, 2) for s, v in r.groupby("strategy")["abs_pct_error"].mean().items()}
    print(f"{path}: {len(frame)} rows, MAPE engine {shipped['abs_pct_error'].mean():.2f}% {mape(shipped)}")
    print(f"{'':>{len(path) + 1}} every SM {packed['abs_pct_error'].mean():.2f}% {mape(packed)}")
    uniform = ~shipped["contexts"].astype(str).str.contains(";")
    table = shipped[uniform].assign(packed=packed.loc[uniform, "pct_error"],
                                    waves=pd.cut(waves_of(shipped[uniform], gpu), WAVE_BINS))
    means = table.groupby(["waves", "strategy"], observed=True)[["pct_error", "packed"]].mean().round(2)
    counts = table.groupby(["waves", "strategy"], observed=True).size().rename("rows")
    print("mean error by waves (uniform batches), engine -> every SM:")
    print(pd.concat([counts, means], axis=1).unstack("strategy").to_string())


def score_oracle(path: str, gpu) -> None:
    from oracle_replay import picks  # scripts/ on the path, as the script runs

    frame = pd.read_csv(path, dtype={"contexts": str, "options": str, "status": str})
    for label, ctx in (("engine", contextlib.nullcontext()), ("every SM", packed_engine())):
        with ctx:
            regret = picks(frame, gpu)["regret_pct"]
        print(f"{path} replayed, {label}: regret mean {regret.mean():.2f}%, p95 {np.percentile(regret, 95):.2f}%, "
              f"max {regret.max():.2f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweeps", nargs="*")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--oracle", default=None, help="an oracle study CSV to replay both ways")
    args = ap.parse_args()
    gpu = resolve_gpu(args.gpu)
    for path in args.sweeps:
        score_sweep(path, gpu)
    if args.oracle:
        score_oracle(args.oracle, gpu)


if __name__ == "__main__":
    main()
