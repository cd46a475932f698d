"""Batch-invariant `auto` on the GPU: time it next to unconstrained `auto` on the oracle workloads
(attnsim/validation/planner_oracle.py), with the shape's runner-up fixed plans, and write a bench CSV
that scripts/invariant_replay.py pools with the committed oracle study.

    PYTHONPATH=. python3 scripts/invariant_study.py --estimate                  # rows, rough duration; no GPU
    PYTHONPATH=. python3 scripts/invariant_study.py --out $OUT/invariant_oracle.csv [--resume] [--limit N]
    PYTHONPATH=. python3 scripts/invariant_replay.py results/h200/planner_oracle.csv $OUT/invariant_oracle.csv

Per workload: `auto`, `auto:batch_invariant=1`, its measured-rule twin `auto:batch_invariant=1,tune=3`
(bench/tune_invariant.py), the RUNNERS_UP next fixed plans of its shape by predicted
mean regret (planner/invariant.py), and fa2; plans that resolve to the same concrete plan are timed once
(the `auto` rows always). Plans for the shipped calibrated profile of --gpu (default h200). Timer: as the
oracle study (do_bench, 10 ms warm-up and repetitions, L2 flushed); every row is checked against the
float64 reference first. Staged: --limit N times the first N workloads, and --resume keeps the ok rows
of an earlier (interrupted) run, so a second call continues where the first stopped.
"""

from __future__ import annotations

import sys

from attnsim.bench.study import run_study, study_parser
from attnsim.kernels.timing import TimerConfig
from attnsim.planner.candidates import searched_entries
from attnsim.planner.choose import cached_search, planned_name
from attnsim.planner.search import invariant_choice
from attnsim.profiles import resolve_gpu
from attnsim.simulator.partition.common import PlanConfig
from attnsim.validation.planner_oracle import TUNED, distinct_plans, oracle_workloads

TIMER = TimerConfig(warmup_ms=10.0, rep_ms=10.0)
RUNNERS_UP = 3


def study_specs(w, gpu) -> list[str]:
    """Plan specs to time on `w`, the two `auto` rows first."""
    auto = planned_name()
    result = cached_search(w, gpu, PlanConfig(batch_invariant=1))
    fixed = [s.spec for s in invariant_choice(w, gpu, PlanConfig(), searched_entries(None, {}, w), None).scored]
    others = [s for s in fixed if s != result.chosen.spec][:RUNNERS_UP]
    return [auto, f"{auto}:batch_invariant=1", f"{auto}:batch_invariant=1,tune={TUNED}",
            *distinct_plans([result.chosen.spec, *others, "fa2"], w, gpu)[1:]]


def main() -> int:
    args = study_parser(__doc__.splitlines()[0], "invariant_oracle.csv").parse_args()
    gpu = resolve_gpu(args.gpu)
    return run_study(args.out, oracle_workloads()[:args.limit], gpu, lambda w: study_specs(w, gpu), TIMER,
                     args.resume, args.estimate)


if __name__ == "__main__":
    sys.exit(main())
