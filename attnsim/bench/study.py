"""A planner study on the GPU: plan specs per workload, timed with the harness into one bench CSV
(scripts/oracle_study.py, scripts/invariant_study.py).

    code = run_study(out, points, gpu, specs_for, timer, resume=True)   # 0: every row ok

Every workload's specs are listed first (their count and a rough duration are printed, and
`estimate_only` stops there, with no GPU); then run_bench_to_csv times them (its sweep makes the batch-invariant
choices they need first, in parallel: bench/prewarm.py), writing the CSV every few
seconds, so a run stopped by a time limit continues with `resume` (its ok rows are kept).
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

from attnsim.bench.harness import estimate_seconds
from attnsim.bench.results import failures, summary
from attnsim.kernels.timing import TimerConfig
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.workload import DecodeWorkload

PROGRESS_EVERY_S = 15.0


def study_parser(description: str, default_out: str) -> argparse.ArgumentParser:
    """The options every study script takes: --out, --gpu, --limit, --resume, --estimate."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", default=default_out)
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--limit", type=int, default=None, help="only the first N workloads")
    ap.add_argument("--resume", action="store_true", help="keep the ok rows of an earlier run of --out")
    ap.add_argument("--estimate", action="store_true", help="plan and estimate only (no GPU)")
    return ap


def run_study(out, points: list[DecodeWorkload], gpu: GpuSpec, specs_for: Callable[[DecodeWorkload], list[str]],
              timer: TimerConfig, resume: bool = False, estimate_only: bool = False,
              say: Callable[[str], None] = lambda m: print(m, flush=True)) -> int:
    """Time `specs_for(w)` on every workload of `points` into `out`; the exit code (1: a row failed)."""
    started = time.monotonic()
    planned = {w: specs_for(w) for w in points}
    rows = sum(len(c) for c in planned.values())
    seconds = sum(estimate_seconds([w], c, timer, read_gbps=4500.0, startup_s=0.0) for w, c in planned.items())
    say(f"{len(points)} workloads, {rows} plan specs (before SDPA skips ragged), planned in "
        f"{time.monotonic() - started:.0f} s; estimated {seconds / 60:.1f} min of timing")
    if estimate_only:
        return 0
    from attnsim.bench.run import run_bench_to_csv

    names = tuple(dict.fromkeys(s for c in planned.values() for s in c))
    last = [time.monotonic()]

    def progress(done: int, total: int, label: str) -> None:
        if time.monotonic() - last[0] > PROGRESS_EVERY_S:
            say(f"  {done}/{total} {label} ({time.monotonic() - started:.0f} s)")
            last[0] = time.monotonic()

    frame = run_bench_to_csv(out, points, gpu, names, timer=timer, resume=resume, progress=progress, log=say,
                             candidates=lambda w: planned[w])
    say(summary(frame).head(40).to_string(index=False))
    bad = failures(frame)
    say(f"wrote {out}: {len(frame)} rows, {len(bad)} failed, {time.monotonic() - started:.0f} s")
    return 1 if len(bad) else 0
