"""Time the batch-invariant planner's fixed chunk plans (issue 20) on the `cal-chunks` sweep
(attnsim/bench/sweep.py): the rows split-KV's chunked plans are fitted on (scripts/splitkv_fit.py), none of
them an oracle workload, so the oracle and invariant studies stay held out.

    PYTHONPATH=. python3 scripts/cal_chunks_study.py --estimate                 # rows, rough duration; no GPU
    PYTHONPATH=. python3 scripts/cal_chunks_study.py --gpu h100 --out $OUT/cal_chunks.csv [--resume] [--limit N]

Per workload: `auto`, `auto:batch_invariant=1`, the RUNNERS_UP fixed plans its shape scores best over the
invariant grid (planner/invariant.py: what the invariant planner may pick), then split-KV and balanced at
SPREAD's chunks (a spread of chunk sizes and caps whatever the ranking), one spec per concrete plan.
Timer: as the oracle study's (10 ms warm-up and repetitions, L2 flushed); every row fp64-checked first.
"""

from __future__ import annotations

import sys

from attnsim.bench.study import run_study, study_parser
from attnsim.bench.sweep import CAL_CHUNKS_MAX_KV_GB, sweep
from attnsim.errors import InputError
from attnsim.kernels.timing import TimerConfig
from attnsim.planner.candidates import context_for, searched_entries
from attnsim.planner.choose import planned_name
from attnsim.planner.search import invariant_choice
from attnsim.plans.spec import plan_spec
from attnsim.profiles import resolve_gpu
from attnsim.simulator.partition.common import PlanConfig
from attnsim.validation.planner_oracle import distinct_plans

TIMER = TimerConfig(warmup_ms=10.0, rep_ms=10.0)
RUNNERS_UP = 24
SPREAD_TILES = (1, 2, 4, 8, 16, 32)  # chunk sizes in KV tiles
SPREAD_CAPS = (None, 16, 64)  # at most this many chunks per sequence (None: no cap)
SPREAD_ENTRIES = ("splitkv", "balanced")


def spread(tile: int) -> list[str]:
    return [plan_spec(name, {"chunk_tokens": k * tile, **({"max_splits": m} if m else {})})
            for name in SPREAD_ENTRIES for k in SPREAD_TILES for m in SPREAD_CAPS]


def study_specs(w, gpu) -> list[str]:
    """Plan specs to time on `w`: the two `auto` rows first, then one spec per concrete fixed plan."""
    auto = planned_name()
    scored = invariant_choice(w, gpu, PlanConfig(), searched_entries(None, {}, w), None).scored
    tile = context_for("splitkv", w, gpu, PlanConfig()).tile  # tokens per KV tile of the kernel
    fixed = [s.spec for s in scored[:RUNNERS_UP]] + spread(tile)  # InputError: e.g. more CTAs than limits.py allows
    return [auto, f"{auto}:batch_invariant=1", *distinct_plans(fixed, w, gpu, skip=(InputError,))]


def main() -> int:
    args = study_parser(__doc__.splitlines()[0], "cal_chunks.csv").parse_args()
    gpu = resolve_gpu(args.gpu)
    points = sweep("cal-chunks", max_kv_gb=CAL_CHUNKS_MAX_KV_GB)[:args.limit]
    return run_study(args.out, points, gpu, lambda w: study_specs(w, gpu), TIMER, args.resume, args.estimate)


if __name__ == "__main__":
    sys.exit(main())
