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
