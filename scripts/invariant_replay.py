"""Batch-invariant `auto` on the CPU: predicted vs unconstrained `auto`, and replayed on measured oracle rows.

    PYTHONPATH=. python3 scripts/invariant_replay.py results/h200/planner_oracle.csv [MORE.csv ...]
        [--gpu h200] [--limit N] [--out per_workload.csv]

Every CSV is a bench CSV of oracle workloads (scripts/oracle_study.py, scripts/invariant_study.py); their
rows are pooled per workload, so a later study's timings of the invariant plans fill the gaps. Prints the
regret table per regime (attnsim/validation/planner_invariant.py) and the workloads whose invariant plan
was not measured.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from attnsim.profiles import resolve_gpu
from attnsim.validation.planner_invariant import by_regime, markdown, replay


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--limit", type=int, default=None, help="only the first N workloads")
    ap.add_argument("--out", default=None, help="write the per-workload table here")
    args = ap.parse_args()
    started = time.process_time()
    frame = pd.concat([pd.read_csv(p, dtype={"contexts": str, "options": str, "status": str, "requested": str})
                       for p in args.csv], ignore_index=True)
    table = replay(frame, resolve_gpu(args.gpu), args.limit)
    print(markdown(by_regime(table)))
    missing = table[table["measured_pct"].isna()]
    print(f"\n{len(table) - len(missing)} of {len(table)} workloads have their invariant plan measured; not measured:")
    for r in missing.itertuples():
        print(f"  {r.workload}: {r.invariant_spec}")
    print(f"\ninvariant plans chosen: {table['invariant_spec'].value_counts().to_dict()}")
    print(f"({time.process_time() - started:.0f} s CPU)")
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
