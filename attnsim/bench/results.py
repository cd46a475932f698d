"""The rows of `attnsim bench`: CSV columns and keys, atomic writes, resume and the summary table.
Plain data; no GPU.

A row's identity is the concrete plan that ran: `strategy` and `options` (a plan spec split in two:
'streamk', 'grid=264'); `requested` is the spec it asked for ('auto', 'streamk', 'streamk:grid=132'),
which keys resume and the summary. grid, splits, registers, ... are what the launcher observed."""

from __future__ import annotations

import math

import pandas as pd

from attnsim.errors import InputError
from attnsim.plans.spec import spec_columns
from attnsim.simulator.workload import DecodeWorkload

KEY_COLUMNS = ["requested", "batch", "q_heads", "kv_heads", "head_dim", "contexts", "dtype", "kv_dtype",
               "page_size", "q_len"]
# Serving columns (issue 13) and their value in CSVs written before they existed.
SERVING_DEFAULTS = {"page_size": 0, "q_len": 1}  # kv_dtype: the row's dtype
META_COLUMNS = {"num_warps": "num_warps", "num_stages": "num_stages", "n_regs": "registers",
                "n_spills": "spills", "smem_bytes": "smem_bytes", "grid": "grid", "splits": "splits",
                "kv_tile": "kv_tile", "launches": "launches"}  # launcher.meta key -> CSV column
LATER_COLUMNS = ("requested", "floor_us", "vs_floor", "kv_lora_rank", "achieved_tflops", "tuned")  # added after CSVs were
# written: older CSVs still resume. floor_us: a pure streaming read of the same bytes under the same timer
# (kernels/membw.ReadFloor); vs_floor = time_us / floor_us, how far the row is from the physical limit;
# tuned: what `auto:tune=K` timed before it ran the fastest (bench/tune.py), 'plan µs; ...'
COLUMNS = ["gpu", "profile", "strategy", "options", "requested", "batch", "q_heads", "kv_heads", "head_dim", "context",
           "contexts", "ragged", "dtype", "kv_dtype", "page_size", "q_len", "kv_lora_rank", "time_us", "floor_us",
           "vs_floor", "achieved_gbps", "bw_fraction", "achieved_tflops", "peak_read_gbps", "kv_bytes", "max_rel_err",
           "status", *META_COLUMNS.values(), "timer", "warmup_ms", "rep_ms", "host_us", "wall_ms", "tuned"]


def row_key(row: dict) -> str:
    return "|".join(_text(row.get(c)) for c in KEY_COLUMNS)


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def point_key(spec: str, w: DecodeWorkload) -> str:
    return row_key({"requested": spec, "batch": w.batch, "q_heads": w.q_heads, "kv_heads": w.kv_heads,
                    "head_dim": w.head_dim, "contexts": w.context_label, "dtype": w.dtype, "kv_dtype": w.cache_dtype,
                    "page_size": w.page_size, "q_len": w.q_len})


def base_row(spec: str, w: DecodeWorkload, config) -> dict:
    """A row with the point's identity and the run's settings filled (config: harness.BenchConfig);
    `spec` is the plan spec asked for: 'auto', 'streamk', or 'streamk:grid=132' (`requested`; the
    strategy and options columns become the plan that ran once it is made: ran_plan)."""
    strategy, options = spec_columns(spec)
    row = dict.fromkeys(COLUMNS)
    row.update(gpu=config.device_name, profile=config.gpu.name, strategy=strategy, options=options, requested=spec,
               batch=w.batch,
               q_heads=w.q_heads, kv_heads=w.kv_heads, head_dim=w.head_dim, context=w.max_context,
               contexts=w.context_label, ragged=w.is_ragged, dtype=w.dtype, kv_dtype=w.cache_dtype,
               page_size=w.page_size, q_len=w.q_len, kv_lora_rank=w.kv_lora_rank, kv_bytes=w.kv_bytes(),
               peak_read_gbps=config.peak_read_gbps, timer=config.timer.name,
               warmup_ms=config.timer.warmup_ms, rep_ms=config.timer.rep_ms)
    return row


def ran_plan(meta: dict) -> dict:
    """The strategy and options columns of the concrete plan a launcher ran (its meta's plan spec;
    a library baseline's launcher has none: the columns stay as asked)."""
    if not meta.get("plan"):
        return {}
    strategy, options = spec_columns(meta["plan"])
    return {"strategy": strategy, "options": options}


def spec_label(row: dict) -> str:
    """The concrete plan spec of a row: 'streamk:grid=264' from its strategy and options columns."""
    options = _text(row.get("options"))
    return row["strategy"] + (f":{options}" if options else "")


def requested_label(row: dict) -> str:
    """What a row asked for: its `requested` column, else (CSVs written before it) its plan spec."""
    return _text(row.get("requested")) or spec_label(row)


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
                                                           "plan": str, "requested": str}))
    except (OSError, ValueError) as exc:
        raise InputError("out", f"cannot resume from {path}: {exc}") from None
    missing = [c for c in COLUMNS if c not in df.columns and c not in LATER_COLUMNS]
    if missing:
        raise InputError("out", f"{path} is not a bench CSV (no column {missing[0]!r})")
    # rows written before they recorded the concrete plan: what they asked for is their plan spec
    df = df.assign(requested=[requested_label(r) for r in df.to_dict("records")])
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
    df = df.assign(spec=[requested_label(r) for r in df.to_dict("records")])
    ok = df[df["status"].astype(str).eq("ok")]
    keys = ok.assign(key=[row_key({**r, "requested": ""}) for r in ok.to_dict("records")])
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
            "median_vs_floor": _median(good, "vs_floor"),
            "worst_rel_err": float(mine["max_rel_err"].astype(float).max()) if mine["max_rel_err"].notna().any() else None,
        })
    return pd.DataFrame(records)


def _median(rows: pd.DataFrame, column: str) -> float | None:
    values = pd.to_numeric(rows[column], errors="coerce").dropna() if column in rows.columns else pd.Series([])
    return round(float(values.median()), 3) if len(values) else None
