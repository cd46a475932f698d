"""How long `attnsim plan` takes: CPU milliseconds per workload on one core, over a mixed set.

    PYTHONPATH=. python3 scripts/bench_plan.py [--gpu h200] [--repeat 3] [--batch-invariant]

The set: the oracle study's 136 workloads (uniform batch 1-64, GQA/MQA, d 64/128, 512-512k
tokens, ragged mixes). Per workload the best of --repeat rounds over the set of planner.search
(uncached) is taken, as process CPU time (the figure is one core's work even when the host is shared). Prints
the mean, median, p90 and max, and the candidates searched and simulated per workload.
--batch-invariant: the batch-invariant search; its fixed plan is chosen once per model shape (a grid of
searches, planner/invariant.py) and then cached, so that one-off cost per shape is reported apart.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from attnsim.validation.planner_oracle import oracle_workloads
from attnsim.planner import invariant
from attnsim.planner.search import search
from attnsim.simulator.partition.common import PlanConfig
from attnsim.profiles import resolve_gpu


def cpu_ms(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-invariant", action="store_true")
    args = ap.parse_args()
    gpu = resolve_gpu(args.gpu)
    options = PlanConfig(batch_invariant=1 if args.batch_invariant else None)
    points = oracle_workloads()
    search(points[0], gpu)  # imports, profile tables
    if args.batch_invariant:
        shapes = {invariant.shape_key(w): w for w in points}
        once = [cpu_ms(lambda: search(w, gpu, options), 1) for w in shapes.values()]
        print(f"{len(shapes)} model shapes: their fixed plans chosen in {np.mean(once):.0f} ms mean, "
              f"{max(once):.0f} max (once per shape, then cached)")
    results = [search(w, gpu, options) for w in points]
    generated, simulated = np.array([r.generated for r in results]), [r.simulated for r in results]
    # best of --repeat rounds over the whole set: a slow spell of a shared host then costs one round of every
    # workload, not all the repeats of a few (back to back, a workload's repeats share the spell)
    ms = np.full(len(points), np.inf)
    for _ in range(args.repeat):
        ms = np.minimum(ms, [cpu_ms(lambda: search(w, gpu, options), 1) for w in points])
    rich = ms[generated >= 50]
    print(f"{len(points)} workloads on {gpu.name}: {ms.mean():.1f} ms mean, {np.median(ms):.1f} median, "
          f"{np.percentile(ms, 90):.1f} p90, {ms.max():.1f} max (CPU, one core)")
    print(f"candidates per workload: {generated.mean():.0f} mean ({generated.min()}..{generated.max()}), "
          f"simulated {np.mean(simulated):.0f} mean")
    if len(rich):
        print(f"workloads with >= 50 candidates: {len(rich)}, {rich.mean():.1f} ms mean, {rich.max():.1f} max")


if __name__ == "__main__":
    main()
