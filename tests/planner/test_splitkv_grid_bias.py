"""scripts/splitkv_grid_bias.py: each split-KV row's error is taken relative to its own workload's mean, so
what the table shows is only what moves the choice between split counts."""

from pathlib import Path

import numpy as np
import pandas as pd

from attnsim.profiles import resolve_gpu
from attnsim.validation.bands import WORKLOAD_KEY
from attnsim.validation.measurements import load_measurements
from script_helpers import load_script

ORACLE = Path(__file__).resolve().parents[2] / "results" / "h200" / "planner_oracle.csv"


def oracle_rows(n_workloads: int) -> pd.DataFrame:
    frame = load_measurements(ORACLE)
    frame = frame[frame.ragged.astype(str) == "False"]
    keys = frame[WORKLOAD_KEY].drop_duplicates().head(n_workloads)
    return frame.merge(keys, on=list(keys.columns))


def test_relative_errors_are_centred_per_workload_and_split_kv_only():
    bias = load_script("splitkv_grid_bias")
    rows = bias.relative_errors(oracle_rows(3), resolve_gpu("h200"))
    assert len(rows) > 3 and rows.plan.str.startswith("splitkv:splits=").all()
    assert rows.key.nunique() <= 3
    assert np.allclose(rows.groupby("key").rel.mean(), 0.0, atol=1e-12)
    assert np.allclose(rows.err, np.log(rows.predicted_us / rows.time_us))
    assert rows.err.abs().max() > 1e-3  # the errors themselves are not centred: only `rel` is
