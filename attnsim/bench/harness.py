"""`attnsim bench`: check, then time, every strategy at every point of a sweep; rows for a CSV.

Per point: one fresh q, K/V views of a preallocated random pool, the float64 reference (chunked);
then per strategy: build its launcher, run it once into a NaN-poisoned output and compare with the
reference (max_rel_err <= 2e-2, no NaN: else status "fail" and no timing), then time it with
`timing.time_us`. Our kernels write into a preallocated `out`; SDPA allocates its own output.

Diagnostics: host_us = CPU time to issue one call (when it nears the ~85 µs L2 flush + time_us,
the GPU may have waited on the CPU inside the timed window, and time_us includes CPU time);
wall_ms = this row's wall time (prepare + check + timing, for budgeting sweeps).

SDPA is timed inside one `sdpa_kernel` context: entering it on every call cost enough host time
to inflate small points 2-6x on the H100 (cuDNN b1 32/8 1k: 80 µs vs 12.4 µs).

Bandwidth accounting: achieved_gbps = (K + V bytes of the real lengths + q read + o written) /
time, the fewest bytes any strategy must move (partials and padding not counted); bw_fraction =
achieved_gbps / peak_read_gbps, the streaming-read bandwidth `membw.peak_read_gbps` measured on
the same GPU in the same run. floor_us = a pure streaming read of those same bytes under the same
timer and flush (membw.ReadFloor, the faster of two read shapes, once per point), vs_floor =
time_us / floor_us: how far a row is from the physical limit (the flush's dirty lines make the
floor ~0.78 of peak at 256 MB).

Statuses: ok; fail: <why> (wrong or NaN output); error: <exception> (our kernel crashed);
unavailable: <exception> (a baseline library refused the shape). fail and error make the CLI exit 1.
Pairs that do not apply (SDPA on a ragged batch: it has no per-sequence lengths) get no row.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import pandas as pd

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.bench import inputs, measure, tune
from attnsim.bench.results import COLUMNS, META_COLUMNS, base_row, point_key, ran_plan
from attnsim.kernels.timing import TimerConfig, expected_calls, host_us
from attnsim.plans.spec import canonical_spec, spec_strategy as spec_name, split_specs
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.workload import DecodeWorkload, query_tile_rows

REL_TOL = 2e-2


@dataclass(frozen=True)
class BenchConfig:
    strategies: tuple[str, ...]
    gpu: GpuSpec  # the profile our launchers plan for
    device_name: str  # what torch reports, e.g. "NVIDIA H100 80GB HBM3"
    peak_read_gbps: float
    timer: TimerConfig = TimerConfig()
    device: str = "cuda"
    rel_tol: float = REL_TOL
    seed: int = 0


def runnable_names() -> tuple[str, ...]:
    """Strategies `attnsim bench` can time: ours (Triton kernels) and the PyTorch baselines."""
    return strategies.names(lambda s: s.runnable)


def parse_strategies(text: str) -> tuple[str, ...]:
    """'fa2,lean,torch-flash' -> ('fa2', 'streamk', 'torch-flash'), in registry order; a plan spec
    with options ('streamk:grid=132', attnsim.plans.spec) times that exact plan.
    Specs are separated by ',' (or ';'), plans.spec.split_specs."""
    parts = split_specs(text, "strategies")
    specs = [canonical_spec(p, "strategies") for p in parts]
    unrunnable = [s for s in specs if not strategies.get(spec_name(s)).runnable]
    if unrunnable:
        raise InputError("strategies", f"{unrunnable[0]} has no kernel to time; choose from {', '.join(runnable_names())}")
    order = {name: i for i, name in enumerate(runnable_names())}
    return tuple(sorted(dict.fromkeys(specs), key=lambda s: order[spec_name(s)]))


def check_pinned_plans(specs, points: list[DecodeWorkload], gpu: GpuSpec) -> None:
    """Every spec with pinned options plans on every point it applies to (a grid above the resident
    capacity, a chunk that is not a multiple of the KV tile, splits beyond the tiles: one InputError
    naming the spec and the point, before anything is timed). Plain names always plan."""
    from attnsim.planner.choose import make_plan

    for spec in (s for s in specs if ":" in s and strategies.get(spec_name(s)).predictable):
        for w in (w for w in points if applicable([spec], w)):
            try:
                make_plan(spec, w, gpu)
            except InputError as exc:
                raise InputError("strategies", f"{spec} on {describe_point(w)}: {exc}") from None


def default_prepare(spec: str, workload: DecodeWorkload, config: BenchConfig):
    """The launcher of a plan spec: ours planned (attnsim.planner.make_plan, `auto` too) and prepared,
    or an SDPA baseline."""
    name = spec_name(spec)
    if strategies.get(name).sdpa_backend is not None:
        from attnsim.kernels.torch_baselines import prepare_baseline

        return prepare_baseline(name, workload, config.gpu)
    from attnsim.kernels.launch import launcher_for

    return launcher_for(spec, workload, config.gpu, device=config.device)


def default_reference():
    from attnsim.kernels.reference import attention_reference

    return attention_reference


def _describe(exc: BaseException) -> str:
    """Type, first and last line: a Triton CompilationError states its cause on the last line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"
    return f"{type(exc).__name__}: {text}"[:300]


def timed_call(launcher, q, k, v, out, run_kwargs=None):
    """(callable, context) to time: the launcher's own when it has one (SDPA picks its backend once,
    outside the timed calls), else run() into the preallocated `out` (run_kwargs: block table, fp8
    scales)."""
    if hasattr(launcher, "timed_call"):
        return launcher.timed_call(q, k, v)
    run_kwargs = run_kwargs or {}
    return (lambda: launcher.run(q, k, v, out=out, **run_kwargs)), contextlib.nullcontext()


def bench_one(strategy: str, w: DecodeWorkload, q, k, v, ref, config: BenchConfig, prepare: Callable,
              run_kwargs: dict | None = None, floor_us: float | None = None) -> dict:
    """One row: check `strategy` against `ref`, then time it. Never raises for a strategy's fault.
    run_kwargs: what a paged or fp8 cache adds to Launcher.run (block_table, k_scale, v_scale);
    floor_us: the point's measured floor (a pure read of its bytes under the same timer)."""
    row = base_row(strategy, w, config)
    started = time.perf_counter()
    run_kwargs = run_kwargs or {}
    try:
        if tune.tuned(strategy):  # the fastest measured of the model's K fastest plans (bench/tune.py)
            launcher, row["tuned"] = tune.tuned_launcher(strategy, w, q, k, v, ref, config, prepare, run_kwargs,
                                                         run_sweep)
        else:
            launcher = prepare(strategy, w, config)
        row.update({col: launcher.meta.get(key) for key, col in META_COLUMNS.items() if key in launcher.meta})
        row.update(ran_plan(launcher.meta))
        err, out = measure.checked_run(launcher, w, q, k, v, ref, run_kwargs)
        row["max_rel_err"] = err
        if not err <= config.rel_tol:
            row["status"] = "fail: NaN/inf or unwritten output" if math.isinf(err) else f"fail: max_rel_err > {config.rel_tol}"
            return row
        fn, context = timed_call(launcher, q, k, v, out, run_kwargs)
        with context:
            t_us = measure.timed_us(fn, config.timer)
            row["host_us"] = round(host_us(fn), 2)
    except Exception as exc:  # a crashing strategy is a row, not the end of the sweep
        # a library refusing a shape (e.g. "No available kernel") is not our failure
        row["status"] = f"{'unavailable' if strategies.get(spec_name(strategy)).baseline else 'error'}: {_describe(exc)}"
        _release_memory()
        return row
    finally:
        row["wall_ms"] = round((time.perf_counter() - started) * 1e3, 1)
    gbps = (w.kv_bytes() + w.io_bytes()) / (t_us * 1e3)
    if floor_us:
        row.update(floor_us=round(floor_us, 3), vs_floor=round(t_us / floor_us, 4))
    row.update(time_us=round(t_us, 3), achieved_gbps=round(gbps, 2),
               bw_fraction=round(gbps / config.peak_read_gbps, 4), achieved_tflops=round(needed_flops(w) / (t_us * 1e6), 2),
               status="ok")
    return row


def needed_flops(w: DecodeWorkload) -> float:
    """The tensor-core FLOPs the step needs (q·Kᵀ and P·V of every real query row and cached token,
    no padding): what achieved_tflops divides by the time, held against the tensor peak for MLA."""
    from attnsim.simulator.mla import tile_flops_per_token

    rows_per_output = w.q_len * w.group  # a kv-head's packed rows
    return tile_flops_per_token(rows_per_output, w.head_dim, w.v_dim) * w.kv_heads * sum(w.contexts)


def _release_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_sweep(points: list[DecodeWorkload], config: BenchConfig, *, prepare: Callable = default_prepare,
              reference: Callable | None = None, done: Iterable[str] = (),
              on_point: Callable[[list[dict]], None] | None = None,
              progress: Callable[[int, int, str], None] | None = None,
              candidates: Callable[[DecodeWorkload], list[str]] | None = None,
              floor: Callable[[int], float | None] | None = None,
              timer_for: Callable[[str, DecodeWorkload], TimerConfig] | None = None) -> pd.DataFrame:
    """Rows for every (point, strategy) not in `done` (keys from point_key), the strategies being
    config.strategies or, per workload, `candidates(w)` (plan specs); `on_point` gets each
    point's rows as they are ready (for incremental CSV writes), `progress(done, total, label)`;
    `floor(bytes)` the µs of a pure read of a point's bytes (default: membw.ReadFloor on the device);
    `timer_for(spec, w)` a row's own timer (default config.timer; calibration times each point with
    what its residual needs, validation/point_cost.point_timer), recorded in its warmup_ms / rep_ms."""
    import torch

    reference = reference or default_reference()
    floor = floor or default_floor(config)
    done = set(done)
    specs_for = candidates or (lambda w: config.strategies)
    todo = [(i, w, [s for s in applicable(specs_for(w), w) if point_key(s, w) not in done])
            for i, w in enumerate(points)]
    todo = [t for t in todo if t[2]]
    total, count, rows = sum(len(t[2]) for t in todo), 0, []
    prewarm(todo, config.gpu)
    pool = inputs.KvPool([w for _, w, _ in todo], points[0].dtype if points else "float16", config.device, config.seed)
    for index, w, strategies in todo:
        q = inputs.make_query(w, index, config.device, config.seed)
        point_rows = []
        with pool.poisoned_padding(w) as (k, v):
            cache = inputs.point_cache(w, k, v, config.seed + index)
            ref = inputs.reference_output(reference, q, cache.ref_k, cache.ref_v, w.contexts, **cache.scales)
            floor_us = floor(w.kv_bytes() + w.io_bytes()) if floor else None
            for s in strategies:
                row_config = replace(config, timer=timer_for(s, w)) if timer_for else config
                point_rows.append(bench_one(s, w, q, cache.k, cache.v, ref, row_config, prepare, cache.run_kwargs,
                                            floor_us))
                count += 1
                if progress:
                    progress(count, total, f"{s} {describe_point(w)}")
        del ref, cache
        rows += point_rows
        if on_point:
            on_point(point_rows)
    del pool
    if config.device != "cpu":
        torch.cuda.empty_cache()
    return pd.DataFrame(rows, columns=COLUMNS)


def prewarm(todo: list, gpu: GpuSpec) -> None:
    """The batch-invariant choices the rows still to run need ([(index, workload, specs)]), made before any is
    timed, in parallel (bench/prewarm.py)."""
    from attnsim.bench.prewarm import prewarm_invariant

    pending = {w: specs for _, w, specs in todo}
    prewarm_invariant(list(pending), gpu, pending.__getitem__)


def default_floor(config: BenchConfig) -> Callable[[int], float] | None:
    """The measured floor on a GPU (kernels/membw.ReadFloor under the bench's timer); none on the CPU."""
    if config.device == "cpu":
        return None
    from attnsim.kernels.membw import ReadFloor

    return ReadFloor(config.timer, config.device).us


def applicable(names, w: DecodeWorkload) -> list[str]:
    """The strategies that can run `w` honestly (SDPA baselines skip ragged batches; an MLA point skips
    the strategies without an MLA kernel, a K/V-head point the MLA-only ones)."""
    from attnsim.kernels.torch_baselines import unsupported_reason

    def left_out(spec: str) -> str | None:
        entry = strategies.get(spec_name(spec))
        if entry.sdpa_backend:
            return unsupported_reason(entry.name, w)
        return entry.unsupported(w) if w.is_mla or entry.mla_only else None

    return [s for s in names if not left_out(s)]


def describe_point(w: DecodeWorkload) -> str:
    ctx = f"ragged<={_short(w.max_context)}" if w.is_ragged else _short(w.max_context)
    serving = (f" p{w.page_size}" * w.paged + " fp8" * w.kv_fp8 + f" q{w.q_len}" * (w.q_len > 1)
               + f" mla{w.kv_lora_rank}" * w.is_mla)
    return f"b{w.batch} h{w.q_heads}/{w.kv_heads} d{w.head_dim} ctx {ctx}{serving}"


def _short(tokens: int) -> str:
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else str(tokens)


def estimate_seconds(points: list[DecodeWorkload], names, timer: TimerConfig = TimerConfig(),
                     read_gbps: float = 2500.0, overhead_ms: float = 10.0, startup_s: float = 10.0,
                     library_first_call_s: float = 0.1, compile_s: float = 1.5) -> float:
    """Rough wall time of a sweep: do_bench's calls per (point, strategy) at `read_gbps` plus the
    flushes, the check run, per-row Python overhead, the float64 reference (~10x the KV bytes), a
    cuDNN graph build per shape, a fixed start (imports, the first Triton compiles, membw, K/V pool)
    and `compile_s` per further kernel variant a serving point compiles (page size, q_len, fp8).
    On the H100 (2026-11-25) the quick sweep's rows took 35-100 ms each after their first call."""
    variants = {(s, w.page_size, w.q_len, w.cache_dtype, query_tile_rows(w)) for w in points for s in names
                if w.paged or w.kv_dtype or w.q_len > 1}
    total_ms = (startup_s + compile_s * len(variants)) * 1e3
    for w in points:
        kernel_us = 8.0 + (w.kv_bytes() + w.io_bytes()) / (read_gbps * 1e3)
        runs = applicable(names, w)
        calls = expected_calls(kernel_us, timer) + 1 + 10  # + check run + host_us calls
        timed = len(runs) + sum(tune.plans_timed(s) for s in runs if not tune.invariant(s))  # auto:tune=K: K first
        total_ms += timed * (calls * (kernel_us + 100.0) / 1e3 + overhead_ms)
        total_ms += 10 * w.kv_bytes() / (read_gbps * 1e6)
        # a library that builds a graph per shape (cuDNN) on its first call
        total_ms += library_first_call_s * 1e3 * sum(strategies.get(spec_name(s)).baseline for s in runs)
    return total_ms / 1e3 + invariant_rules_seconds(points, names, timer, read_gbps, overhead_ms)


def invariant_rules_seconds(points: list[DecodeWorkload], names, timer: TimerConfig, read_gbps: float,
                            overhead_ms: float) -> float:
    """What `auto:batch_invariant=1,tune=K` adds once per model shape: K rules and `auto` timed on its grid."""
    from attnsim.bench.tune_invariant import rule_grid
    from attnsim.planner.choose import planned_name
    from attnsim.planner.invariant import shape_key

    shapes = {(shape_key(w), s): w for w in points for s in applicable(names, w) if tune.invariant(s)}
    return sum(tune.plans_timed(s) * estimate_seconds(rule_grid(w), (planned_name(),), timer, read_gbps, overhead_ms, 0.0)
               for (_, s), w in shapes.items())
