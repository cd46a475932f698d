"""Timing one callable on the GPU, the way every figure in `attnsim bench` is taken.

Default: `triton.testing.do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median")`.
- `warmup` and `rep` are milliseconds of GPU time, not counts: do_bench runs `fn` 5 times to
  estimate its time t, then max(1, warmup/t) warm-up calls and max(1, rep/t) timed calls.
- Before every timed call do_bench writes a 256 MB buffer, which flushes the H100's 50 MB L2: each
  sample reads K/V from HBM (cold L2), however small the KV cache. We flush; we do not rotate inputs.
- Each sample is a pair of CUDA events around one call, so launch overhead (~5 µs for a tiny
  kernel on the H100) is inside the figure, as it is for a serving engine that launches eagerly.
  The flush (~85 µs of GPU time) lets the CPU run ahead; a callable whose host-side cost exceeds
  flush + kernel time starves the GPU and its figure includes CPU time (`host_us` shows the cost).

`cudagraph=True` uses `triton.testing.do_bench_cudagraph` instead: rep_ms worth of calls replayed
from one CUDA graph, median of 10 replays, per-call time = replay / calls. That removes the launch
gaps but does NOT flush L2 between calls (warm L2 for KV caches under ~50 MB). The `timer` column
of the CSV says which was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

DEFAULT_WARMUP_MS = 25.0  # do_bench's default; 5 ms left some small points slow on the H100 (see bench.py)
DEFAULT_REP_MS = 20.0


@dataclass(frozen=True)
class TimerConfig:
    warmup_ms: float = DEFAULT_WARMUP_MS
    rep_ms: float = DEFAULT_REP_MS
    cudagraph: bool = False
    replay: bool = True  # time a CUDA-graph replay of the call (see replayable)

    @property
    def name(self) -> str:
        """The CSV `timer` column: which triton.testing function, and the L2 state it times."""
        if self.cudagraph:
            return "do_bench_cudagraph(median,L2 warm)"
        return "do_bench(median,L2 flushed,graph replay)" if self.replay else "do_bench(median,L2 flushed)"


def replayable(fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` captured once into a CUDA graph; returns the graph's replay.

    do_bench gives each timed call only the L2 flush (~80 µs of GPU time on an H100) as a head
    start; a Python launcher that needs longer to issue its kernels (two launches for split-KV,
    ~25 arguments each) would have that host time measured as kernel time at small contexts. A
    replay issues the same kernels with the same arguments in ~10 µs of host time, so do_bench
    measures the GPU. Run `fn` once before (compilation, allocation) — the caller's check does.
    """
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()  # warm on a side stream, as torch's graph capture recipe asks
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def time_us(fn: Callable[[], object], config: TimerConfig = TimerConfig()) -> float:
    """Median time of one call of `fn`, in microseconds (see the module docstring for how)."""
    from triton import testing  # not at import time: CPU hosts import this module too

    if config.cudagraph:
        ms = testing.do_bench_cudagraph(fn, rep=config.rep_ms, return_mode="median")
    else:
        ms = testing.do_bench(fn, warmup=config.warmup_ms, rep=config.rep_ms, return_mode="median")
    return float(ms) * 1e3


def host_us(fn: Callable[[], object], calls: int = 10) -> float:
    """CPU time to issue one call of `fn` (mean of `calls`, GPU drained before and after), in µs."""
    import time

    import torch

    if not torch.cuda.is_available():
        return float("nan")
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter() - start
    torch.cuda.synchronize()
    return elapsed / calls * 1e6


def expected_calls(kernel_us: float, config: TimerConfig = TimerConfig(), flush_us: float = 100.0) -> int:
    """Calls do_bench makes of a kernel taking `kernel_us` (its estimate loop times the flush too)."""
    estimate_ms = (kernel_us + (0.0 if config.cudagraph else flush_us)) / 1e3
    warmup = 0 if config.cudagraph else max(1, int(config.warmup_ms / estimate_ms))
    repeat = max(1, int(config.rep_ms / estimate_ms))
    return 1 + 5 + warmup + repeat * (10 if config.cudagraph else 1)
