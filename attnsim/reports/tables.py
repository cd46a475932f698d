"""Records (list of dicts) -> text table, CSV or JSON."""

from __future__ import annotations

import json

import pandas as pd

TABLE_COLUMNS = ["gpu", "strategy", "batch", "q_heads", "kv_heads", "head_dim", "context", "time_us",
                 "speedup_vs_fa2", "speedup_vs_flashdecoding", "grid", "splits", "achieved_gbps", "bw_fraction"]


def format_records(records: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(records, indent=2)
    frame = pd.DataFrame(records)
    if fmt == "csv":
        return frame.to_csv(index=False)
    columns = [c for c in TABLE_COLUMNS if c in frame.columns] or list(frame.columns)
    return frame[columns].to_string(index=False)


def _label_contexts(frame: pd.DataFrame) -> pd.DataFrame:
    from attnsim.reports.style import format_tokens

    labels = [format_tokens(int(c)) if str(c).isdigit() else f"{len(str(c).split(';'))} seqs" for c in frame["context"]]
    return frame.assign(context=labels)


def speedup_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (gpu, model, mix, batch, context): each strategy's time (µs) and speedup over fa2,
    the floor (KV bytes / bandwidth, µs), the fastest strategy and how close it gets to the floor."""
    keys = [k for k in ("gpu", "model", "mix", "batch", "context") if k in frame.columns]
    strategies = list(dict.fromkeys(frame["strategy"]))
    time = frame.pivot_table(index=keys, columns="strategy", values="time_us", sort=False)[strategies]
    speedup = frame.pivot_table(index=keys, columns="strategy", values="speedup_vs_fa2", sort=False)
    table = pd.DataFrame(index=time.index)
    for s in strategies:
        table[f"{s} µs"] = time[s].round(1)
    for s in strategies:
        if s != "fa2":
            table[f"{s} ×fa2"] = speedup[s].round(2)
    floor = frame.groupby(keys, sort=False)["floor_us"].first()
    table["floor µs"] = floor.round(2)
    table["fastest"] = time.idxmin(axis=1)
    table["fastest % of floor"] = (100 * floor / time.min(axis=1)).round(0)
    return _label_contexts(table.reset_index())
