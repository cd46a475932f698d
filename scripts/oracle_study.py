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

import argparse
import sys
import time

from attnsim.bench.harness import estimate_seconds
from attnsim.bench.results import failures, summary
from attnsim.kernels.timing import TimerConfig
from attnsim.validation.planner_oracle import oracle_candidates, oracle_workloads
from attnsim.profiles import resolve_gpu

TIMER = TimerConfig(warmup_ms=10.0, rep_ms=10.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/h200/planner_oracle.csv")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--limit", type=int, default=None, help="only the first N workloads")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--estimate", action="store_true")
    args = ap.parse_args()
    gpu = resolve_gpu(args.gpu)
    points = oracle_workloads()[:args.limit]
    started = time.monotonic()
    candidates = {w: oracle_candidates(w, gpu) for w in points}
    rows = sum(len(c) for c in candidates.values())
    seconds = sum(estimate_seconds([w], c, TIMER, read_gbps=4500.0, startup_s=0.0) for w, c in candidates.items())
    print(f"{len(points)} workloads, {rows} plan specs (before SDPA skips ragged), planned in "
          f"{time.monotonic() - started:.0f} s; estimated {seconds / 60:.1f} min of timing", flush=True)
    if args.estimate:
        return 0
    from attnsim.bench.run import run_bench_to_csv

    names = tuple(dict.fromkeys(s for c in candidates.values() for s in c))
    last = [time.monotonic()]

    def progress(done: int, total: int, label: str) -> None:
        if time.monotonic() - last[0] > 15:
            print(f"  {done}/{total} {label} ({time.monotonic() - started:.0f} s)", flush=True)
            last[0] = time.monotonic()

    frame = run_bench_to_csv(args.out, points, gpu, names, timer=TIMER, resume=args.resume, progress=progress,
                             log=lambda m: print(m, flush=True), candidates=lambda w: candidates[w])
    print(summary(frame).head(40).to_string(index=False))
    bad = failures(frame)
    print(f"wrote {args.out}: {len(frame)} rows, {len(bad)} failed, {time.monotonic() - started:.0f} s")
    return 1 if len(bad) else 0


if __name__ == "__main__":
    sys.exit(main())
