"""What a calibration point costs in GPU seconds, and the timer each point gets.

`attnsim calibrate` holds the GPU for: a fixed start (CUDA context, the first Triton compiles, the
bandwidth curve, the launch overhead), then per workload the float64 reference and the random K/V
it is checked against, per kernel variant one compile, per (workload, plan) one harness row: build
the launcher, one check run, the CUDA-graph capture, `host_us`'s 10 calls and do_bench's calls.

do_bench (triton.testing, `warmup` and `rep` in ms): 1 + 5 calls with the L2 flush to estimate the
call time e = t + flush, then max(1, warmup/e) warm-up calls without the flush and max(1, rep/e)
timed calls with it. A row's GPU time is therefore about (6 + rep/e) x e + (warmup/e) x t.

Per-point timer (`point_timer`): the figure a row gives is the median of its timed calls, whose
relative standard error is about 1.25 x CV / sqrt(n) for n samples of spread CV. The assumption
(to be checked on the device: scripts/calibration_device.py) is CV <= 3% for µs-scale kernels,
where launch jitter dominates, and <= 0.5% from ~1 ms, where the kernel streams for long enough
that clock and DRAM noise average out: TARGET_SAMPLES samples (median within ~0.6%) for short
kernels, never more than the standard rep_ms, never fewer than MIN_SAMPLES (within ~0.3% for long
ones). Warm-up: WARMUP_MS at most: the GPU is busy with the previous row, so its clocks are up.

The constants below were estimated from committed rows (`estimate_row_costs` re-derives the two
row terms from any bench or calibration table: results/h200/calibration_data.json gives them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.kernels.timing import DEFAULT_REP_MS, DEFAULT_WARMUP_MS, TimerConfig

# Strategies whose library builds a graph per shape on its first call (each calibration row is a new
# shape): PyTorch's cuDNN backend
LIBRARY_GRAPH_PER_SHAPE = strategies.names(lambda s: s.sdpa_backend == "CUDNN_ATTENTION")
FLUSH_US = 100.0  # do_bench's 256 MB L2 flush before each timed call (~85 µs H100, ~70-100 µs H200)
TARGET_SAMPLES = 40  # timed calls wanted for a µs-scale kernel (see the module docstring)
MIN_SAMPLES = 5  # and at least this many for a ms-scale one
WARMUP_MS = 5.0  # warm-up per row in a calibration run
BANDWIDTH_POINT_S = 0.05  # one point of the bandwidth curve: do_bench at 25 + 20 ms and its set-up


@dataclass(frozen=True)
class PointCosts:
    """GPU seconds a calibration run spends, by what they are spent on.

    row_overhead_s and compile_s: the H200 calibration rows (results/h200/calibration_data.json,
    1,776 rows; `estimate_row_costs`): the median of wall_ms minus do_bench's calls, and the median
    excess of each kernel's first row over it. library_first_call_s: the cuDNN rows' median excess
    over the other rows' (a cuDNN graph built per shape). Per workload: the float64 reference reads
    K/V as float64 chunks, ~10x the fp16 bytes at ~2.5 TB/s effective (bench.harness.estimate_seconds'
    assumption), plus query and views. start_s: torch/Triton import and CUDA context (~6 s, the
    --quick runs of issue 21 took 9-15 s with the curve), the bandwidth curve's 28 do_bench points at
    ~50 ms each, the launch overhead and the occupancy cross-checks.
    """

    row_overhead_s: float = 0.0074
    compile_s: float = 0.38
    library_first_call_s: float = 0.046  # torch-cudnn rows only (LIBRARY_GRAPH_PER_SHAPE)
    workload_fixed_s: float = 0.02
    reference_s_per_gb: float = 10.0 / 2500.0
    start_s: float = 8.0
    flush_us: float = FLUSH_US

    def timing_s(self, kernel_us: float, timer: TimerConfig) -> float:
        """GPU seconds of do_bench's calls for a kernel of `kernel_us` (module docstring)."""
        call_us = kernel_us + self.flush_us
        warmup_calls = max(1, int(timer.warmup_ms * 1e3 / call_us))
        timed_calls = max(1, int(timer.rep_ms * 1e3 / call_us))
        return ((6 + timed_calls) * call_us + warmup_calls * kernel_us) / 1e6

    def row_s(self, kernel_us: float, timer: TimerConfig) -> float:
        """One harness row: launcher, check run, graph capture, host_us's calls, and do_bench."""
        return self.row_overhead_s + (1 + 10) * kernel_us / 1e6 + self.timing_s(kernel_us, timer)

    def workload_s(self, kv_bytes: float) -> float:
        """One workload's set-up: its float64 reference and inputs."""
        return self.workload_fixed_s + self.reference_s_per_gb * kv_bytes / 1e9


def point_timer(kernel_us: float, base: TimerConfig = TimerConfig()) -> TimerConfig:
    """The timer of a calibration point predicted to take `kernel_us`: TARGET_SAMPLES timed calls,
    capped at base.rep_ms, but at least MIN_SAMPLES (module docstring); warm-up at most WARMUP_MS."""
    call_ms = (kernel_us + FLUSH_US) / 1e3
    rep_ms = max(min(TARGET_SAMPLES * call_ms, base.rep_ms), MIN_SAMPLES * call_ms)
    warmup_ms = min(base.warmup_ms, WARMUP_MS)
    return TimerConfig(warmup_ms=round(warmup_ms, 3), rep_ms=round(rep_ms, 3), cudagraph=base.cudagraph,
                       replay=base.replay)


def standard_timer() -> TimerConfig:
    """The timer calibrate used before point selection (every row warmup 25 ms, rep 20 ms)."""
    return TimerConfig(warmup_ms=DEFAULT_WARMUP_MS, rep_ms=DEFAULT_REP_MS)


def estimate_row_costs(rows: pd.DataFrame, costs: PointCosts = PointCosts()) -> dict[str, float]:
    """row_overhead_s, compile_s and library_first_call_s re-derived from measured rows with
    time_us, wall_ms, warmup_ms and rep_ms (see PointCosts): the per-row excess of wall time over
    do_bench's calls; a kernel's first row (first of its strategy and head dim) carries the compile."""
    rows = rows[rows["status"].fillna("ok") == "ok"].reset_index(drop=True)
    timing_ms = [1e3 * costs.timing_s(t, TimerConfig(warmup_ms=w, rep_ms=r))
                 for t, w, r in zip(rows["time_us"], rows["warmup_ms"], rows["rep_ms"])]
    excess_ms = rows["wall_ms"].to_numpy(float) - np.array(timing_ms)
    first = ~rows.duplicated(subset=["strategy", "head_dim"])
    baseline = rows["strategy"].isin(LIBRARY_GRAPH_PER_SHAPE).to_numpy()
    steady = excess_ms[~first.to_numpy() & ~baseline]
    overhead_ms = float(np.median(steady))
    return {"row_overhead_s": overhead_ms / 1e3,
            "compile_s": float(np.median(excess_ms[first.to_numpy()]) - overhead_ms) / 1e3,
            "library_first_call_s": float(np.median(excess_ms[baseline & ~first.to_numpy()]) - overhead_ms) / 1e3,
            "rows": int(len(rows))}


def seconds_label(seconds: float) -> str:
    """'42 s' or '3 min 5 s' for progress lines."""
    seconds = int(math.ceil(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60} s"
