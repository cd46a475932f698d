"""Predictions per second of the simulator (plan + simulate) on one CPU core, over a large sweep.

    .venv/bin/python scripts/bench_predict.py               # the figure
    .venv/bin/python scripts/bench_predict.py --profile 25  # plus where the time goes (cProfile)

Sweep: contexts 512..512k (powers of two) x batch 1..64 (powers of two) x heads (32/32, 64/8,
32/8, 128/128) x head_dim (64, 128) x strategies (fa2, flashdecoding, streamk) = 1848 predictions.
A benchmark, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import pstats
import sys
import time

CONTEXTS = [512 * 2**i for i in range(11)]  # 512 .. 512k
BATCHES = [1, 2, 4, 8, 16, 32, 64]
HEADS = [(32, 32), (64, 8), (32, 8), (128, 128)]
HEAD_DIMS = [64, 128]
STRATEGIES = ["fa2", "flashdecoding", "streamk"]


def sweep():
    from attnsim.simulator.workload import DecodeWorkload

    for context, batch, (q_heads, kv_heads), head_dim in itertools.product(CONTEXTS, BATCHES, HEADS, HEAD_DIMS):
        workload = DecodeWorkload.build(batch, q_heads, kv_heads, head_dim, context)
        for strategy in STRATEGIES:
            yield strategy, workload


def run(cases, gpu, clock=time.process_time) -> float:
    """Seconds to plan and simulate every case once (CPU time of this process by default, which
    other load on the machine disturbs less than wall time)."""
    from attnsim.predict import predict_one

    start = clock()
    for strategy, workload in cases:
        predict_one(strategy, workload, gpu)
    return clock() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", default="h100", help="preset name (datasheet figures)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the sweep; the best is reported")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="also print the top N functions by cumulative time")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    from attnsim.simulator.hardware import from_name

    gpu = from_name(args.gpu)
    cases = list(sweep())
    run(cases[:50], gpu)  # warm-up: imports, occupancy cache
    seconds = min(run(cases, gpu) for _ in range(args.repeat))
    wall = min(run(cases, gpu, time.perf_counter) for _ in range(args.repeat))
    per_strategy = {s: min(run([c for c in cases if c[0] == s], gpu) for _ in range(args.repeat))
                    for s in STRATEGIES}
    n = len(cases)
    print(f"{n} predictions on {gpu.name}, one core: {seconds:.3f} CPU s -> {n / seconds:,.0f} predictions/s "
          f"({1e6 * seconds / n:.0f} us each; wall clock {n / wall:,.0f}/s)")
    for s, sec in per_strategy.items():
        k = n // len(STRATEGIES)
        print(f"  {s:>13}: {k / sec:,.0f} predictions/s ({1e6 * sec / k:.0f} us each)")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run(cases, gpu)
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(args.profile)
        stats.sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
