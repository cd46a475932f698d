"""Records (list of dicts) -> text table, CSV or JSON; and the report's speedup table."""

from __future__ import annotations

import pandas as pd

from attnsim.units import format_tokens  # not via reports.style: that imports matplotlib (~0.5 s)
from attnsim import schema, strategies
from attnsim.strategies import SPEEDUP_BASES

TABLE_COLUMNS = ["gpu", "strategy", "batch", "q_heads", "kv_heads", "head_dim", "context", "time_us", "likely_us",
                 *(f"speedup_vs_{b}" for b in SPEEDUP_BASES), "grid", "splits", "achieved_gbps", "bw_fraction"]
UNCALIBRATED_MARK = "*"
UNFITTED_MARK = "†"  # a serving term the plan uses was not fitted on this GPU, or a padded head dim
NULLABLE_COLUMNS = {"splits", "page_size"}  # integer columns whose null means "does not apply"
NOT_APPLICABLE = "–"
# Serving columns, shown only when some record needs them: (column, inserted right after, shown if);
# inserted in this order, so the later of two at the same place comes first
OPTIONAL_COLUMNS = (
    ("page_size", "head_dim", lambda f: f["page_size"].notna().any()),
    ("kv_lora_rank", "head_dim", lambda f: f["kv_lora_rank"].notna().any()),
    ("tp", "head_dim", lambda f: (f["tp"] != 1).any()),
    ("kv_dtype", "head_dim", lambda f: (f["kv_dtype"] != f["dtype"]).any()),
    ("q_len", "head_dim", lambda f: (f["q_len"] != 1).any()),
    ("token_attention_us", "time_us", lambda f: f["token_attention_us"].notna().any()),
    ("layers", "time_us", lambda f: f["layers"].notna().any()),
    ("bound", "bw_fraction", lambda f: (f["bound"] == "compute").any()),
    ("window_tokens", "layers", lambda f: f["window_tokens"].notna().any()),
    # KV capacity (simulator/capacity.py): shown when some workload does not fit the GPU's memory
    ("kv_cache_gib", "bw_fraction", lambda f: f["capacity_warning"].notna().any()),
    ("gpu_memory_gib", "kv_cache_gib", lambda f: f["capacity_warning"].notna().any()),
)


def context_summary(context) -> str:
    """A number for a uniform batch; 'ragged 64: 500..100k' for per-sequence lengths ('a;b;c' or a list)."""
    lengths = [int(c) for c in str(context).split(";")] if not isinstance(context, (list, tuple)) else context
    if len(set(lengths)) > 1:
        return f"ragged {len(lengths)}: {format_tokens(min(lengths))}..{format_tokens(max(lengths))}"
    return str(lengths[0])


def format_records(records: list[dict], fmt: str, show_plan: bool = False) -> str:
    """JSON: the versioned document of attnsim.schema; CSV: flat columns (schema.flat: a ragged
    context joined with ';', the plan as its spec, null as an empty cell); the table summarises
    ragged contexts and marks rows of non-calibrated profiles, with a footnote, and shows the plan
    (its spec) when `show_plan` or a row is `auto`'s choice."""
    if fmt == "json":
        return schema.document_text(schema.document("predictions", records))
    frame = schema.records_frame(records)
    if fmt == "csv":
        return frame.to_csv(index=False)
    return _table(frame, show_plan)


def table_columns(frame: pd.DataFrame) -> list[str]:
    """TABLE_COLUMNS present in `frame`, plus the serving columns its records use (q_len > 1, an fp8
    KV cache, a paged cache, a model's per-token total)."""
    columns = [c for c in TABLE_COLUMNS if c in frame.columns]
    for column, after, wanted in OPTIONAL_COLUMNS:
        needed = {column, after, {"kv_dtype": "dtype", "kv_cache_gib": "capacity_warning",
                                  "gpu_memory_gib": "capacity_warning"}.get(column, column)}
        if needed <= set(frame.columns) and wanted(frame):
            columns.insert(columns.index(after) + 1, column)
    return columns or list(frame.columns)


def _table(frame: pd.DataFrame, show_plan: bool = False) -> str:
    shown = frame.assign(context=[context_summary(c) for c in frame["context"]])
    if "time_lo_us" in frame.columns:  # the measured-time range the error band implies
        shown["likely_us"] = [f"{lo:.4g}-{hi:.4g}" for lo, hi in zip(frame["time_lo_us"], frame["time_hi_us"])]
    columns = table_columns(shown)
    for column in NULLABLE_COLUMNS.intersection(shown.columns):  # null: not applicable, shown as a dash
        shown[column] = [NOT_APPLICABLE if pd.isna(v) else int(v) for v in shown[column]]
    if "plan" in frame.columns and (show_plan or any(strategies.get(s).planned for s in set(frame["strategy"]))):
        columns.insert(columns.index("strategy") + 1, "plan")  # what `auto` chose, or the plan a spec named
    notes = _source_notes(frame, shown) if "profile_source" in frame.columns else []
    return "\n".join([shown[columns].to_string(index=False), *notes])


def _source_notes(frame: pd.DataFrame, shown: pd.DataFrame) -> list[str]:
    """Marks `shown` in place and returns the footnotes: UNCALIBRATED_MARK on the GPU of a row not
    calibrated on it (its profile, or its family: `family_source` "not calibrated"); UNFITTED_MARK on
    likely_us of a row whose plan uses serving terms that were not fitted on this GPU ("calibrated;
    paging terms at defaults") or whose head dim is padded (simulator/provenance.py)."""
    kind = frame["profile_source"].str.partition(";")[0]
    if "family_source" in frame.columns:  # a family with datasheet costs in a calibrated/transferred profile
        kind = kind.where(frame["family_source"] != "not calibrated", "not calibrated")
    uncalibrated, unfitted = kind != "calibrated", frame["profile_source"].str.contains(";", regex=False)
    shown["gpu"] = [g + (UNCALIBRATED_MARK if u else "") for g, u in zip(frame["gpu"], uncalibrated)]
    notes = [uncalibrated_note(gpu, source, rows)
             for (gpu, source), rows in frame[uncalibrated].groupby(["gpu", kind[uncalibrated]], sort=False)]
    if "likely_us" in shown.columns:
        shown["likely_us"] = [v + (UNFITTED_MARK if u else "") for v, u in zip(shown["likely_us"], unfitted)]
    for (gpu, source), rows in frame[unfitted].groupby(["gpu", "profile_source"], sort=False):
        regimes = ", ".join(dict.fromkeys(rows.get("band_regime", pd.Series(["serving"]))))
        notes.append(f"{UNFITTED_MARK} {gpu}: {source}; likely_us: the band of its regime ({regimes}: measured on "
                     "the serving sweeps, the mla sweep or the H100's padded sweeps, where the profile has them), not "
                     "the decode band alone")
    return notes


def uncalibrated_note(gpu: str, kind: str, rows: pd.DataFrame) -> str:
    """The footnote of rows not calibrated on their GPU: their expected error is the one their
    likely_us range comes from (the same residuals, simulator.bands), per regime."""
    expected = rows["expected_error_pct"].dropna() if "expected_error_pct" in rows else pd.Series(dtype=float)
    if expected.empty:
        said = "error not measured"
    elif expected.max() - expected.min() < 0.5:
        said = f"expected error ~{expected.iloc[0]:.0f}%"
    else:
        said = f"expected error {expected.min():.0f}-{expected.max():.0f}% by regime"
    what = (f"{', '.join(dict.fromkeys(rows['strategy']))} not calibrated (datasheet costs)" if kind == "not calibrated"
            else f"{kind} profile, not calibrated on this GPU")
    return (f"{UNCALIBRATED_MARK} {gpu}: {what} ({said}, from the residuals behind likely_us, "
            "the range its error band implies)")


def _label_contexts(frame: pd.DataFrame) -> pd.DataFrame:
    labels = [format_tokens(int(c)) if str(c).isdigit() else f"{len(str(c).split(';'))} seqs" for c in frame["context"]]
    return frame.assign(context=labels)


def speedup_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (gpu, model, mix, batch, context): each strategy's time (µs) and speedup over the
    first speedup base, the floor (a pure read of the bytes, µs), the fastest strategy and how close it
    gets to the floor."""
    keys = [k for k in ("gpu", "model", "mix", "batch", "context") if k in frame.columns]
    strategies = list(dict.fromkeys(frame["strategy"]))
    base = SPEEDUP_BASES[0]
    time = frame.pivot_table(index=keys, columns="strategy", values="time_us", sort=False)[strategies]
    speedup = frame.pivot_table(index=keys, columns="strategy", values=f"speedup_vs_{base}", sort=False)
    table = pd.DataFrame(index=time.index)
    for s in strategies:
        table[f"{s} µs"] = time[s].round(1)
    for s in strategies:
        if s != base:
            table[f"{s} ×{base}"] = speedup[s].round(2)
    floor = frame.groupby(keys, sort=False)["floor_us"].first()
    table["floor µs"] = floor.round(2)
    plans = planner_plans(frame, keys)
    if plans is not None:
        table["planner's plan"] = plans
    table["fastest"] = [fastest_label(s, plans.get(i, "") if plans is not None else "")
                        for i, s in zip(time.index, time.idxmin(axis=1))]
    table["fastest % of floor"] = (100 * floor / time.min(axis=1)).round(0)
    return _label_contexts(table.reset_index())


def planner_plans(frame: pd.DataFrame, keys: list[str]) -> pd.Series | None:
    """Per case: the plan spec the planner chose (None when no planner entry was modelled)."""
    rows = frame[[strategies.get(s).planned for s in frame["strategy"]]]
    return None if rows.empty or "plan" not in rows else rows.groupby(keys, sort=False)["plan"].first()


def fastest_label(strategy: str, plan: str) -> str:
    """'auto (streamk:grid=132)': a planner's win names the plan that won."""
    return f"{strategy} ({plan})" if plan and strategies.get(strategy).planned else strategy


def step_table(frame: pd.DataFrame) -> pd.DataFrame | None:
    """Attention per decode step through all layers (token_attention_us), one column per strategy,
    for the rows of models with a layer count; None when there are none."""
    if "token_attention_us" not in frame or frame["token_attention_us"].isna().all():
        return None
    rows = frame.dropna(subset=["token_attention_us"])
    keys = [k for k in ("gpu", "model", "layers", "mix", "batch", "context") if k in rows.columns]
    names = list(dict.fromkeys(rows["strategy"]))
    step = rows.pivot_table(index=keys, columns="strategy", values="token_attention_us", sort=False)[names]
    table = pd.DataFrame(index=step.index)
    for s in names:
        table[f"{s} µs/step"] = step[s].round(1)
    plans = planner_plans(rows, keys)
    table["fastest"] = [fastest_label(s, plans.get(i, "") if plans is not None else "")
                        for i, s in zip(step.index, step.idxmin(axis=1))]
    return _label_contexts(table.reset_index())
