"""Time the planner's search axes where the oracle study's rank errors sit (issue 20): the `cal-search`
sweep (attnsim/bench/sweep.py), each workload with the oracle study's dense candidate set plus stream-K
and hybrid grids every 1/8 of the SM count between 1 and 2 CTAs per SM (within capacity).

    PYTHONPATH=. python3 scripts/cal_search_study.py --estimate              # rows and rough duration, no GPU
    PYTHONPATH=. python3 scripts/cal_search_study.py --out $OUT/cal_search.csv [--resume] [--limit N]

The CSV has the oracle study's columns, so scripts/oracle_errors.py and scripts/oracle_replay.py read it;
it is meant for fitting the per-SM sharing term and the 32-row tile math (docs/planner.md), never for
scoring (the oracle study scores). Timer as the oracle study's (10 ms warm-up, 10 ms repetitions).
"""

from __future__ import annotations

import sys

from attnsim import strategies
from attnsim.bench.study import run_study, study_parser
from attnsim.bench.sweep import sweep
from attnsim.planner.search import Evaluator
from attnsim.profiles import resolve_gpu
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.workload import DecodeWorkload
from attnsim.planner.choose import planned_name
from attnsim.plans.spec import spec_strategy
from attnsim.validation.planner_oracle import distinct_plans, fingerprint, oracle_candidates

TIMER_WARMUP_MS = TIMER_REP_MS = 10.0
GRID_EIGHTHS = range(8, 17)  # grids of 8/8 .. 16/8 x SMs: 1 to 2 CTAs per SM


def one_to_two_ctas_per_sm(w: DecodeWorkload, gpu: GpuSpec) -> list[str]:
    """Stream-K and hybrid (its default DP outputs) at every eighth of the SM count from 1x to 2x, within capacity."""
    ev = Evaluator(w, gpu, PlanConfig())
    specs = []
    for name in strategies.names(lambda s: s.candidate and "grid" in s.search):
        capacity = ev.context(name).capacity
        specs += [f"{name}:grid={g}" for g in sorted({min(capacity, e * gpu.sm_count // 8) for e in GRID_EIGHTHS})]
    return specs


def candidates(w: DecodeWorkload, gpu: GpuSpec) -> list[str]:
    """The oracle study's specs, then the 1-2 CTAs/SM grids that plan to a concrete plan not yet in them."""
    specs = oracle_candidates(w, gpu)
    taken = {fingerprint(s, w, gpu) for s in specs if spec_strategy(s) != planned_name()}
    return specs + distinct_plans(one_to_two_ctas_per_sm(w, gpu), w, gpu, taken)


def main() -> int:
    from attnsim.kernels.timing import TimerConfig
    args = study_parser(__doc__.splitlines()[0], "cal_search.csv").parse_args()
    gpu = resolve_gpu(args.gpu)
    return run_study(args.out, sweep("cal-search")[:args.limit], gpu, lambda w: candidates(w, gpu),
                     TimerConfig(warmup_ms=TIMER_WARMUP_MS, rep_ms=TIMER_REP_MS), args.resume, args.estimate)


if __name__ == "__main__":
    sys.exit(main())
