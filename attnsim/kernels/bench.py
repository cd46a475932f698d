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
the same GPU in the same run.

Statuses: ok; fail: <why> (wrong or NaN output); error: <exception> (our kernel crashed);
unavailable: <exception> (a baseline library refused the shape). fail and error make the CLI exit 1.
Pairs that do not apply (SDPA on a ragged batch: it has no per-sequence lengths) get no row.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from attnsim.errors import InputError
from attnsim.kernels import bench_inputs as inputs
from attnsim.kernels.timing import TimerConfig, host_us, replayable, time_us
from attnsim.kernels.torch_baselines import BACKENDS, prepare_baseline, unsupported_reason
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.partition import canonical_strategy
from attnsim.simulator.workload import DecodeWorkload

OUR_STRATEGIES = ("fa2", "flashdecoding", "streamk")  # our Triton kernels (attnsim.kernels.launch)
BASELINES = tuple(BACKENDS)  # torch-flash, torch-cudnn
ALL_STRATEGIES = OUR_STRATEGIES + BASELINES
REL_TOL = 2e-2
KEY_COLUMNS = ["strategy", "batch", "q_heads", "kv_heads", "head_dim", "contexts", "dtype"]
META_COLUMNS = {"num_warps": "num_warps", "num_stages": "num_stages", "n_regs": "registers",
                "n_spills": "spills", "smem_bytes": "smem_bytes", "grid": "grid", "splits": "splits",
                "kv_tile": "kv_tile", "launches": "launches"}  # launcher.meta key -> CSV column
COLUMNS = ["gpu", "profile", "strategy", "batch", "q_heads", "kv_heads", "head_dim", "context", "contexts",
           "ragged", "dtype", "time_us", "achieved_gbps", "bw_fraction", "peak_read_gbps", "kv_bytes",
           "max_rel_err", "status", *META_COLUMNS.values(), "timer", "warmup_ms", "rep_ms", "host_us", "wall_ms"]


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


def parse_strategies(text: str) -> tuple[str, ...]:
    """'fa2,lean,torch-flash' -> ('fa2', 'streamk', 'torch-flash'), in ALL_STRATEGIES order."""
    names = [s.strip().lower() for s in text.split(",") if s.strip()]
    if not names:
        raise InputError("strategies", "empty list")
    chosen = {n if n in BASELINES else _canonical_ours(n) for n in names}
    return tuple(s for s in ALL_STRATEGIES if s in chosen)


def _canonical_ours(name: str) -> str:
    try:
        key = canonical_strategy(name)
    except InputError:
        key = None
    if key in OUR_STRATEGIES:
        return key
    raise InputError("strategies", f"unknown {name!r}; choose from {', '.join(ALL_STRATEGIES)}") from None


def default_prepare(strategy: str, workload: DecodeWorkload, config: BenchConfig):
    """The launcher of `strategy`: ours through attnsim.kernels.launch.prepare, or an SDPA baseline."""
    if strategy in BASELINES:
        return prepare_baseline(strategy, workload, config.gpu)
    from attnsim.kernels.launch import prepare

    return prepare(strategy, workload, config.gpu, device=config.device)


def default_reference():
    from attnsim.kernels.reference import attention_reference

    return attention_reference


def row_key(row: dict) -> str:
    return "|".join(str(row[c]) for c in KEY_COLUMNS)


def point_key(strategy: str, w: DecodeWorkload) -> str:
    return row_key({"strategy": strategy, "batch": w.batch, "q_heads": w.q_heads, "kv_heads": w.kv_heads,
                    "head_dim": w.head_dim, "contexts": w.context_label, "dtype": w.dtype})


def base_row(strategy: str, w: DecodeWorkload, config: BenchConfig) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(gpu=config.device_name, profile=config.gpu.name, strategy=strategy, batch=w.batch,
               q_heads=w.q_heads, kv_heads=w.kv_heads, head_dim=w.head_dim, context=w.max_context,
               contexts=w.context_label, ragged=w.is_ragged, dtype=w.dtype, kv_bytes=w.kv_bytes(),
               peak_read_gbps=config.peak_read_gbps, timer=config.timer.name,
               warmup_ms=config.timer.warmup_ms, rep_ms=config.timer.rep_ms)
    return row


def _describe(exc: BaseException) -> str:
    """Type, first and last line: a Triton CompilationError states its cause on the last line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"
    return f"{type(exc).__name__}: {text}"[:300]


def timed_call(launcher, q, k, v, out):
    """(callable, context) to time: the launcher's own when it has one (SDPA picks its backend once,
    outside the timed calls), else run() into the preallocated `out`."""
    if hasattr(launcher, "timed_call"):
        return launcher.timed_call(q, k, v)
    return (lambda: launcher.run(q, k, v, out=out)), contextlib.nullcontext()


def bench_one(strategy: str, w: DecodeWorkload, q, k, v, ref, config: BenchConfig, prepare: Callable) -> dict:
    """One row: check `strategy` against `ref`, then time it. Never raises for a strategy's fault."""
    row = base_row(strategy, w, config)
    started = time.perf_counter()
    try:
        launcher = prepare(strategy, w, config)
        row.update({col: launcher.meta.get(key) for key, col in META_COLUMNS.items() if key in launcher.meta})
        out = inputs.poisoned_like(q)
        err = inputs.max_rel_err(launcher.run(q, k, v, out=out), ref)
        row["max_rel_err"] = err
        if not err <= config.rel_tol:
            row["status"] = "fail: NaN/inf or unwritten output" if math.isinf(err) else f"fail: max_rel_err > {config.rel_tol}"
            return row
        fn, context = timed_call(launcher, q, k, v, out)
        with context:
            timed = replayable(fn) if config.timer.replay and not config.timer.cudagraph else fn
            t_us = time_us(timed, config.timer)
            row["host_us"] = round(host_us(fn), 2)
    except Exception as exc:  # a crashing strategy is a row, not the end of the sweep
        # a library refusing a shape (e.g. "No available kernel") is not our failure
        row["status"] = f"{'unavailable' if strategy in BASELINES else 'error'}: {_describe(exc)}"
        _release_memory()
        return row
    finally:
        row["wall_ms"] = round((time.perf_counter() - started) * 1e3, 1)
    gbps = (w.kv_bytes() + w.io_bytes()) / (t_us * 1e3)
    row.update(time_us=round(t_us, 3), achieved_gbps=round(gbps, 2),
               bw_fraction=round(gbps / config.peak_read_gbps, 4), status="ok")
    return row


def _release_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_sweep(points: list[DecodeWorkload], config: BenchConfig, *, prepare: Callable = default_prepare,
              reference: Callable | None = None, done: Iterable[str] = (),
              on_point: Callable[[list[dict]], None] | None = None,
              progress: Callable[[int, int, str], None] | None = None) -> pd.DataFrame:
    """Rows for every (point, strategy) not in `done` (keys from point_key); `on_point` gets each
    point's rows as they are ready (for incremental CSV writes), `progress(done, total, label)`."""
    import torch

    reference = reference or default_reference()
    done = set(done)
    todo = [(i, w, [s for s in applicable(config.strategies, w) if point_key(s, w) not in done])
            for i, w in enumerate(points)]
    todo = [t for t in todo if t[2]]
    total, count, rows = sum(len(t[2]) for t in todo), 0, []
    pool = inputs.KvPool([w for _, w, _ in todo], points[0].dtype if points else "float16", config.device, config.seed)
    for index, w, strategies in todo:
        q = inputs.make_query(w, index, config.device, config.seed)
        k, v = pool.views(w)
        ref = inputs.reference_output(reference, q, k, v, w.contexts)
        point_rows = []
        with pool.poisoned_padding(w) as (k, v):
            for s in strategies:
                point_rows.append(bench_one(s, w, q, k, v, ref, config, prepare))
                count += 1
                if progress:
                    progress(count, total, f"{s} {describe_point(w)}")
        del ref
        rows += point_rows
        if on_point:
            on_point(point_rows)
    del pool
    if config.device != "cpu":
        torch.cuda.empty_cache()
    return pd.DataFrame(rows, columns=COLUMNS)


def applicable(strategies, w: DecodeWorkload) -> list[str]:
    """The strategies that can run `w` honestly (SDPA baselines skip ragged batches)."""
    return [s for s in strategies if not (s in BASELINES and unsupported_reason(s, w))]


def describe_point(w: DecodeWorkload) -> str:
    ctx = f"ragged<={_short(w.max_context)}" if w.is_ragged else _short(w.max_context)
    return f"b{w.batch} h{w.q_heads}/{w.kv_heads} d{w.head_dim} ctx {ctx}"


def _short(tokens: int) -> str:
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else str(tokens)


def failures(df: pd.DataFrame) -> pd.DataFrame:
    status = df["status"].astype(str)
    return df[status.str.startswith("fail") | status.str.startswith("error")]


# --- CSV, resume, summary, estimate ---------------------------------------------------------------

def write_csv(df: pd.DataFrame, path) -> None:
    """Atomically (write to a temporary file, rename): a killed run never leaves half a CSV."""
    from attnsim.fileio import write_text

    write_text(path, df.reindex(columns=COLUMNS).to_csv(index=False))


def load_previous(path) -> pd.DataFrame:
    """Rows of an earlier run to keep on --resume: the ok ones (failures and errors are redone)."""
    try:
        df = pd.read_csv(path, dtype={"contexts": str, "status": str})
    except (OSError, ValueError) as exc:
        raise InputError("out", f"cannot resume from {path}: {exc}") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError("out", f"{path} is not a bench CSV (no column {missing[0]!r})")
    return df[df["status"].fillna("").astype(str).eq("ok")].reset_index(drop=True)


def done_keys(df: pd.DataFrame) -> set[str]:
    return {row_key(r) for r in df.to_dict("records")}


def summary(df: pd.DataFrame, big_kv_bytes: int = 256 << 20) -> pd.DataFrame:
    """Per strategy: geomean time over the points every listed strategy ran (so the geomeans
    compare), median bw_fraction, min bw_fraction where KV >= 256 MiB, worst error, failures."""
    ok = df[df["status"].astype(str).eq("ok")]
    keys = ok.assign(key=[row_key({**r, "strategy": ""}) for r in ok.to_dict("records")])
    common = set.intersection(*(set(g["key"]) for _, g in keys.groupby("strategy"))) if len(keys) else set()
    records = []
    for strategy in dict.fromkeys(df["strategy"]):
        mine, good = df[df["strategy"] == strategy], keys[keys["strategy"] == strategy]
        shared = good[good["key"].isin(common)]["time_us"].astype(float)
        big = good[good["kv_bytes"].astype(float) >= big_kv_bytes]["bw_fraction"].astype(float)
        records.append({
            "strategy": strategy, "ok": len(good), "failed": len(failures(mine)),
            "geomean_us_common": round(math.exp(shared.map(math.log).mean()), 2) if len(shared) else None,
            "median_bw_fraction": round(good["bw_fraction"].astype(float).median(), 3) if len(good) else None,
            "min_bw_fraction_kv256m": round(big.min(), 3) if len(big) else None,
            "worst_rel_err": float(mine["max_rel_err"].astype(float).max()) if mine["max_rel_err"].notna().any() else None,
        })
    return pd.DataFrame(records)


def estimate_seconds(points: list[DecodeWorkload], strategies, timer: TimerConfig = TimerConfig(),
                     read_gbps: float = 2500.0, overhead_ms: float = 10.0, startup_s: float = 10.0,
                     cudnn_first_call_s: float = 0.1) -> float:
    """Rough wall time of a sweep: do_bench's calls per (point, strategy) at `read_gbps` plus the
    flushes, the check run, per-row Python overhead, the float64 reference (~10x the KV bytes), a
    cuDNN graph build per shape and a fixed start (imports, Triton compiles, membw, K/V pool).
    On the H100 (2026-11-25) the quick sweep's rows took 35-100 ms each after their first call."""
    from attnsim.kernels.timing import expected_calls

    total_ms = startup_s * 1e3
    for w in points:
        kernel_us = 8.0 + (w.kv_bytes() + w.io_bytes()) / (read_gbps * 1e3)
        runs = applicable(strategies, w)
        calls = expected_calls(kernel_us, timer) + 1 + 10  # + check run + host_us calls
        total_ms += len(runs) * (calls * (kernel_us + 100.0) / 1e3 + overhead_ms)
        total_ms += 10 * w.kv_bytes() / (read_gbps * 1e6)
        total_ms += cudnn_first_call_s * 1e3 * ("torch-cudnn" in runs)
    return total_ms / 1e3


# --- the whole run: device checks, peak bandwidth, sweep, incremental CSV -------------------------

def require_cuda() -> str:
    """The CUDA device's name, or a one-line InputError on a host without one."""
    import torch

    if not torch.cuda.is_available():
        raise InputError("gpu", "no CUDA GPU is visible to torch here; `attnsim bench` times kernels on a GPU "
                                "(`attnsim bench --estimate` and `attnsim predict` run without one)")
    return torch.cuda.get_device_name()


def usable_strategies(strategies, log: Callable[[str], None]) -> tuple[str, ...]:
    """Drop what this machine cannot run at all, saying why: a missing SDPA backend is a note;
    our kernels missing (no attnsim.kernels.launch) is an input error."""
    from attnsim.kernels.torch_baselines import backend_available

    if any(s in OUR_STRATEGIES for s in strategies):
        try:
            import attnsim.kernels.launch  # noqa: F401
        except ImportError as exc:
            raise InputError("strategies", f"our kernels need attnsim.kernels.launch ({exc}); "
                                           "run with --strategies torch-flash,torch-cudnn") from None
    kept = []
    for s in strategies:
        reason = backend_available(s) if s in BASELINES else None
        if reason:
            log(f"dropping {s}: {reason}")
        else:
            kept.append(s)
    return tuple(kept)


def run_bench_to_csv(out_path, gpu: str = "h100", sweep: str = "standard", strategies=ALL_STRATEGIES,
                     dtype: str = "float16", timer: TimerConfig = TimerConfig(), max_kv_gb: float = 16.0,
                     limit: int | None = None, resume: bool = False, peak_read_gbps: float | None = None,
                     progress: Callable[[int, int, str], None] | None = None,
                     log: Callable[[str], None] = lambda message: None, write_every_s: float = 5.0) -> pd.DataFrame:
    """Run a sweep on the GPU and write its CSV (atomically, every `write_every_s` and at the end).

    With `resume`, the ok rows of an existing `out_path` are kept and not re-measured. Returns all
    rows; the caller decides what failures mean (the CLI exits 1).
    """
    import torch

    from attnsim.kernels import membw
    from attnsim.kernels.sweep import sweep as sweep_points
    from attnsim.simulator.profiles import resolve_gpu

    device_name = require_cuda()
    spec = resolve_gpu(gpu)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    if sms != spec.sm_count:
        log(f"warning: the device has {sms} SMs, profile {spec.name} plans for {spec.sm_count}")
    strategies = usable_strategies(strategies, log)
    points = sweep_points(sweep, dtype, max_kv_gb)[:limit]
    previous = load_previous(out_path) if resume and Path(out_path).exists() else pd.DataFrame(columns=COLUMNS)
    if peak_read_gbps is None:
        peak_read_gbps = membw.peak_read_gbps(timer=timer)
        log(f"measured HBM read bandwidth: {peak_read_gbps:.0f} GB/s (membw.peak_read_gbps)")
    config = BenchConfig(strategies, spec, device_name, peak_read_gbps, timer)
    rows, last_write = list(previous.to_dict("records")), [time.monotonic()]

    def on_point(point_rows: list[dict]) -> None:
        rows.extend(point_rows)
        if time.monotonic() - last_write[0] >= write_every_s:
            write_csv(pd.DataFrame(rows, columns=COLUMNS), out_path)
            last_write[0] = time.monotonic()

    run_sweep(points, config, done=done_keys(previous), on_point=on_point, progress=progress)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(frame, out_path)
    return frame
