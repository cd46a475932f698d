"""scripts/auto_as_planned.py: an `auto` row is on plan exactly when the spec it ran (strategy + options
columns) is what the profile plans for its workload today."""

from pathlib import Path

import pandas as pd

from attnsim.planner.choose import make_plan
from attnsim.profiles import resolve_gpu
from attnsim.validation.measurements import row_workload
from script_helpers import load_script

PAGED = Path(__file__).resolve().parents[2] / "results" / "h200" / "bench_paged.csv"


def auto_rows(n: int) -> pd.DataFrame:
    frame = pd.read_csv(PAGED, dtype=str, keep_default_na=False)
    return frame[frame["requested"] == "auto"].head(n).reset_index(drop=True)


def set_spec(frame: pd.DataFrame, i: int, spec: str) -> None:
    strategy, _, options = spec.partition(":")
    frame.loc[i, "strategy"], frame.loc[i, "options"] = strategy, options


def test_rows_on_todays_plan_pass_and_a_row_on_another_is_listed():
    script, gpu = load_script("auto_as_planned"), resolve_gpu("h200")
    rows = auto_rows(4)
    today = [make_plan("auto", row_workload(r), gpu).spec for _, r in rows.iterrows()]
    for i, spec in enumerate(today):
        set_spec(rows, i, spec)
    assert script.off_plan(rows, gpu) == []
    other = "fa2" if not today[2].startswith("fa2") else "flashdecoding:splits=2"
    set_spec(rows, 2, other)
    (bad,) = script.off_plan(rows, gpu)
    assert bad["ran"] == other and bad["today"] == today[2] and bad["batch"] == rows.loc[2, "batch"]
    rows.loc[1, "requested"] = "streamk"  # rows that asked for a strategy are not `auto`'s
    set_spec(rows, 1, "streamk:grid=7")
    assert len(script.off_plan(rows, gpu)) == 1
