"""A prototype of the engine past one wave at the SM level, scored on the CTA traces (CPU; not the engine).

    PYTHONPATH=. python3 scripts/sm_waves_proto.py results/h100 results/h100/kernel_trace_tails [--gpu h100]
        [--fast 0.18] [--ratio 1.25] [--power 0.44]

The engine (engine._waves) runs a launch past its resident slots on one chip-wide share and starts every CTA
past the first wave as a slot frees, one an SM, as if every SM were alike. The traces (docs/validation.md, "Our
attention launches traced CTA by CTA") show otherwise: a fast set of SMs (--fast of them) ends its CTAs early at
two or more CTAs an SM, the block scheduler hands the next CTAs to the slots as they free (the fast SMs take as
many tail CTAs as they freed), and CTAs sharing an SM share its stream. This prototype keeps every SM: CTA i of
the first wave on SM i % S, each later CTA on the slot that freed first (an SM's freed slots refilled together,
as the traces show); between events each SM asks min(k b, R) (R x --ratio on a fast SM: its share of the GPC),
the chip's knee stretches the asks (cost.BandwidthModel.load_rates' rule) and an SM's CTAs split its share.
Costs are the profile's (the launch's b, R, knee and HBM rate, each CTA's bytes and fixed time as the engine
bills them). Prints, per traced plan whose CTAs all carry the same bytes, bench's time, the engine's and the
prototype's.
"""

from __future__ import annotations

import argparse
import heapq
from pathlib import Path

import numpy as np

from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu
from attnsim.simulator import cost
from attnsim.simulator.engine import simulate
from attnsim.simulator.occupancy import resident_capacity
from kernel_trace_model import load, workload_of


def sm_waves_span(work: np.ndarray, fixed: np.ndarray, slots: int, bw: cost.BandwidthModel, fast: float,
                  ratio: float, power: float = 0.0) -> float:
    """µs from the launch's start to its last CTA's end: CTAs of `work` bytes [grid] and `fixed` µs [grid].
    power > 0: an SM of k CTAs asks b x k^power (x ratio on a fast SM from two CTAs on) instead of min(k b, R)."""
    sms = bw.sm_count
    per_sm = slots // sms
    fast_sms = set(np.linspace(0, sms - 1, round(fast * sms)).astype(int).tolist())
    limit = [bw.sm_stream_rate * (ratio if s in fast_sms else 1.0) for s in range(sms)]
    streaming = [dict() for _ in range(sms)]  # per SM: cta -> bytes left
    releases, free = [], []  # (t, sm) of fixed tails holding a slot; (t, order, sm) of freed slots
    next_cta, t, end = 0, 0.0, 0.0
    for i in range(min(slots, len(work))):  # the first wave: round-robin over the SMs
        streaming[i % sms][i] = float(work[i])
        next_cta += 1
    order = 0
    while any(streaming) or releases or (free and next_cta < len(work)):
        while free and next_cta < len(work):  # the slot that freed first takes the next CTA
            _, _, s = heapq.heappop(free)
            streaming[s][next_cta] = float(work[next_cta])
            next_cta += 1
        if power:
            asks = [bw.cta_rate * len(c) ** power * (ratio if s in fast_sms and len(c) > 1 else 1.0) if c else 0.0
                    for s, c in enumerate(streaming)]
        else:
            asks = [min(len(c) * bw.cta_rate, limit[s]) if c else 0.0 for s, c in enumerate(streaming)]
        total = sum(asks)
        u = total / bw.hbm_rate
        stretch = bw._knee(u, max(u, 1.0)) / total if total > 0 else 1.0
        rate = [asks[s] * stretch / len(c) if c else 0.0 for s, c in enumerate(streaming)]
        dt_stream = min((left / rate[s] for s, c in enumerate(streaming) for left in c.values()), default=np.inf)
        dt_release = releases[0][0] - t if releases else np.inf
        dt = min(dt_stream, dt_release)
        t += dt
        for s, c in enumerate(streaming):
            for cta in list(c):
                c[cta] -= rate[s] * dt
                if c[cta] <= 1e-6 * work[cta]:
                    del c[cta]
                    heapq.heappush(releases, (t + float(fixed[cta]), s))
        while releases and releases[0][0] <= t + 1e-12:
            t_release, s = heapq.heappop(releases)
            end = max(end, t_release)
            order += 1  # refilled where and as they free (the traces: the fast SMs take up to three tail CTAs each)
            heapq.heappush(free, (t_release, order, s))
    return end


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--gpu", default="h100")
    ap.add_argument("--fast", type=float, default=24 / 132)
    ap.add_argument("--ratio", type=float, default=1.25)
    ap.add_argument("--power", type=float, default=0.0, help="an SM's ask b x k^power (0: min(k b, R))")
    args = ap.parse_args()
    gpu = resolve_gpu(args.gpu)
    print(f"{'plan':<26}{'grid':>6}{'slots':>6}{'bench µs':>10}{'engine':>9}{'proto':>9}{'engine %':>10}"
          f"{'proto %':>9}")
    for folder in args.folders:
        points, _ = load(folder)
        for _, row in points.iterrows():
            plan = make_plan(row.plan, workload_of(row), gpu)
            launch = plan.schedule.launches[0]
            work = cost.cta_work_bytes(launch)
            if work.min() != work.max() or len(plan.schedule.launches) > 1 and row.grid <= 132:
                continue
            params = gpu.cost_for(launch.family)
            fixed = cost.cta_fixed_us(params, launch, plan.schedule)
            bw = cost.bandwidth_model(gpu, launch, plan.schedule)
            engine = simulate(plan.schedule, gpu)
            rest = engine.total_us - (engine.launches[0].end_us - engine.launches[0].start_us)  # overheads, combine
            proto = rest + sm_waves_span(work, fixed, resident_capacity(gpu, launch.resources), bw, args.fast,
                                         args.ratio, args.power)
            print(f"{row.plan:<26}{row.grid:>6}{resident_capacity(gpu, launch.resources):>6}{row.time_us:>10.1f}"
                  f"{engine.total_us:>9.1f}{proto:>9.1f}{100 * (engine.total_us / row.time_us - 1):>+10.1f}"
                  f"{100 * (proto / row.time_us - 1):>+9.1f}")


if __name__ == "__main__":
    main()
