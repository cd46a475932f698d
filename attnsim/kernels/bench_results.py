"""The rows of `attnsim bench`: CSV columns and keys, atomic writes, resume, the summary table and a
duration estimate. Plain data; no GPU."""

from __future__ import annotations

import math

import pandas as pd

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.kernels.timing import TimerConfig
from attnsim.simulator.workload import DecodeWorkload

KEY_COLUMNS = ["strategy", "options", "batch", "q_heads", "kv_heads", "head_dim", "contexts", "dtype", "kv_dtype",
               "page_size", "q_len"]
# Serving columns (issue 13) and their value in CSVs written before they existed.
SERVING_DEFAULTS = {"page_size": 0, "q_len": 1}  # kv_dtype: the row's dtype
META_COLUMNS = {"num_warps": "num_warps", "num_stages": "num_stages", "n_regs": "registers",
                "n_spills": "spills", "smem_bytes": "smem_bytes", "grid": "grid", "splits": "splits",
                "kv_tile": "kv_tile", "launches": "launches", "plan": "plan"}  # launcher.meta key -> CSV column
LATER_COLUMNS = ("plan",)  # added after CSVs were written: an older CSV without them still resumes
COLUMNS = ["gpu", "profile", "strategy", "options", "batch", "q_heads", "kv_heads", "head_dim", "context", "contexts",
           "ragged", "dtype", "kv_dtype", "page_size", "q_len", "time_us", "achieved_gbps", "bw_fraction",
           "peak_read_gbps", "kv_bytes",
           "max_rel_err", "status", *META_COLUMNS.values(), "timer", "warmup_ms", "rep_ms", "host_us", "wall_ms"]


def row_key(row: dict) -> str:
    return "|".join(_text(row.get(c)) for c in KEY_COLUMNS)


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def point_key(spec: str, w: DecodeWorkload) -> str:
    strategy, _, options = spec.partition(":")
    return row_key({"strategy": strategy, "options": options, "batch": w.batch, "q_heads": w.q_heads, "kv_heads": w.kv_heads,
                    "head_dim": w.head_dim, "contexts": w.context_label, "dtype": w.dtype, "kv_dtype": w.cache_dtype,
                    "page_size": w.page_size, "q_len": w.q_len})


def base_row(spec: str, w: DecodeWorkload, config) -> dict:
    """A row with the point's identity and the run's settings filled (config: bench.BenchConfig);
    `spec` is a plan spec: 'streamk', or 'streamk:grid=132' (strategy + options columns)."""
    strategy, _, options = spec.partition(":")
    row = dict.fromkeys(COLUMNS)
    row.update(gpu=config.device_name, profile=config.gpu.name, strategy=strategy, options=options, batch=w.batch,
               q_heads=w.q_heads, kv_heads=w.kv_heads, head_dim=w.head_dim, context=w.max_context,
               contexts=w.context_label, ragged=w.is_ragged, dtype=w.dtype, kv_dtype=w.cache_dtype,
               page_size=w.page_size, q_len=w.q_len, kv_bytes=w.kv_bytes(),
               peak_read_gbps=config.peak_read_gbps, timer=config.timer.name,
               warmup_ms=config.timer.warmup_ms, rep_ms=config.timer.rep_ms)
    return row


def spec_label(row: dict) -> str:
    """'streamk' or 'streamk:grid=132' from a row's strategy and options columns."""
    options = _text(row.get("options"))
    return row["strategy"] + (f":{options}" if options else "")


def failures(df: pd.DataFrame) -> pd.DataFrame:
    status = df["status"].astype(str)
    return df[status.str.startswith("fail") | status.str.startswith("error")]


def write_csv(df: pd.DataFrame, path) -> None:
    """Atomically (write to a temporary file, rename): a killed run never leaves half a CSV."""
    from attnsim.fileio import write_text

    write_text(path, df.reindex(columns=COLUMNS).to_csv(index=False))


def load_previous(path) -> pd.DataFrame:
    """Rows of an earlier run to keep on --resume: the ok ones (failures and errors are redone)."""
    try:
        df = with_serving_columns(pd.read_csv(path, dtype={"contexts": str, "status": str, "options": str,
                                                           "plan": str}))
    except (OSError, ValueError) as exc:
        raise InputError("out", f"cannot resume from {path}: {exc}") from None
    df = df.assign(**{c: None for c in LATER_COLUMNS if c not in df.columns})
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError("out", f"{path} is not a bench CSV (no column {missing[0]!r})")
    return df[df["status"].fillna("").astype(str).eq("ok")].reset_index(drop=True)


def with_serving_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A bench frame written before the serving columns: contiguous KV in the row's dtype, q_len 1."""
    if "dtype" not in df.columns:
        return df
    df = df.assign(**{c: v for c, v in SERVING_DEFAULTS.items() if c not in df.columns})
    if "kv_dtype" not in df.columns:
        df = df.assign(kv_dtype=df["dtype"])
    return df


def done_keys(df: pd.DataFrame) -> set[str]:
    return {row_key(r) for r in df.to_dict("records")}


def summary(df: pd.DataFrame, big_kv_bytes: int = 256 << 20) -> pd.DataFrame:
    """Per strategy: geomean time over the points every listed strategy ran (so the geomeans
    compare), median bw_fraction, min bw_fraction where KV >= 256 MiB, worst error, failures."""
    df = df.assign(spec=[spec_label(r) for r in df.to_dict("records")])
    ok = df[df["status"].astype(str).eq("ok")]
    keys = ok.assign(key=[row_key({**r, "strategy": "", "options": ""}) for r in ok.to_dict("records")])
    common = set.intersection(*(set(g["key"]) for _, g in keys.groupby("spec"))) if len(keys) else set()
    records = []
    for strategy in dict.fromkeys(df["spec"]):
        mine, good = df[df["spec"] == strategy], keys[keys["spec"] == strategy]
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


def estimate_seconds(points: list[DecodeWorkload], names, timer: TimerConfig = TimerConfig(),
                     read_gbps: float = 2500.0, overhead_ms: float = 10.0, startup_s: float = 10.0,
                     library_first_call_s: float = 0.1, compile_s: float = 1.5) -> float:
    """Rough wall time of a sweep: do_bench's calls per (point, strategy) at `read_gbps` plus the
    flushes, the check run, per-row Python overhead, the float64 reference (~10x the KV bytes), a
    cuDNN graph build per shape, a fixed start (imports, the first Triton compiles, membw, K/V pool)
    and `compile_s` per further kernel variant a serving point compiles (page size, q_len, fp8).
    On the H100 (2026-11-25) the quick sweep's rows took 35-100 ms each after their first call."""
    from attnsim.kernels.bench import applicable, spec_name
    from attnsim.kernels.timing import expected_calls

    from attnsim.simulator.partition.common import query_tile_rows

    variants = {(s, w.page_size, w.q_len, w.cache_dtype, query_tile_rows(w)) for w in points for s in names
                if w.paged or w.kv_dtype or w.q_len > 1}
    total_ms = (startup_s + compile_s * len(variants)) * 1e3
    for w in points:
        kernel_us = 8.0 + (w.kv_bytes() + w.io_bytes()) / (read_gbps * 1e3)
        runs = applicable(names, w)
        calls = expected_calls(kernel_us, timer) + 1 + 10  # + check run + host_us calls
        total_ms += len(runs) * (calls * (kernel_us + 100.0) / 1e3 + overhead_ms)
        total_ms += 10 * w.kv_bytes() / (read_gbps * 1e6)
        # a library that builds a graph per shape (cuDNN) on its first call
        total_ms += library_first_call_s * 1e3 * sum(strategies.get(spec_name(s)).baseline for s in runs)
    return total_ms / 1e3
