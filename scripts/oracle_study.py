"""The planner's oracle study on the GPU: time the dense candidate set of every oracle workload
(attnsim/validation/planner_oracle.py) and write a bench CSV (results/h200/planner_oracle.csv).

    PYTHONPATH=. python3 scripts/oracle_study.py --estimate              # rows and rough duration, no GPU
    PYTHONPATH=. python3 scripts/oracle_study.py --out $OUT/planner_oracle.csv [--resume] [--limit N]

Plans for the shipped calibrated profile of --gpu (default h200). Timer: do_bench with 10 ms of
warm-up and 10 ms of repetitions (not the bench default 25/20): ~2,800 rows fit in ~5 minutes of
H200 time. Every row is checked against the float64 reference first (bench.py). --resume keeps the
ok rows of an interrupted run.
"""

from __future__ import annotations

import sys

from attnsim.bench.study import run_study, study_parser
from attnsim.kernels.timing import TimerConfig
from attnsim.validation.planner_oracle import oracle_candidates, oracle_workloads
from attnsim.profiles import resolve_gpu

TIMER = TimerConfig(warmup_ms=10.0, rep_ms=10.0)


def main() -> int:
    args = study_parser(__doc__.splitlines()[0], "results/h200/planner_oracle.csv").parse_args()
    gpu = resolve_gpu(args.gpu)
    return run_study(args.out, oracle_workloads()[:args.limit], gpu, lambda w: oracle_candidates(w, gpu), TIMER,
                     args.resume, args.estimate)


if __name__ == "__main__":
    sys.exit(main())
