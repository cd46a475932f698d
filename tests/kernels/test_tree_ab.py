"""scripts/tree_ab.py pairs two trees' rows of the same points and reports time B / time A: only rows that
are ok on both sides count, the rest are listed, grouped by strategy and the columns asked for."""

import pandas as pd
import pytest

from script_helpers import load_script

tree_ab = load_script("tree_ab")


def rows(times: dict, status: dict | None = None) -> pd.DataFrame:
    """Bench-like rows: (strategy, page_size) -> time_us, at one workload."""
    status = status or {}
    return pd.DataFrame([dict(strategy=s, requested=s, batch=1, q_heads=32, kv_heads=8, head_dim=128, context=8192,
                              contexts="8192", dtype="bfloat16", kv_dtype="", page_size=p, q_len=1,
                              time_us=t, status=status.get((s, p), "ok")) for (s, p), t in times.items()])


def test_ratios_are_b_over_a_per_strategy_and_group(tmp_path, capsys):
    a = rows({("fa2", 16): 100.0, ("fa2", 32): 100.0, ("splitkv", 16): 50.0, ("splitkv", 0): 40.0})
    b = rows({("fa2", 16): 90.0, ("fa2", 32): 95.0, ("splitkv", 16): 60.0, ("splitkv", 0): 40.0},
             status={("splitkv", 0): "fail: max rel err 0.5"})
    good, bad = tree_ab.paired(a, b)
    assert sorted(good["ratio"].round(3)) == [0.9, 0.95, 1.2]
    assert len(bad) == 1 and bad["status_b"].iloc[0].startswith("fail")
    table = tree_ab.summary(good, ["page_size"])
    assert table.loc[("fa2", "16"), "median"] == pytest.approx(0.9)
    assert table.loc[("splitkv", "16"), "pairs"] == 1
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    assert tree_ab.main([str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--by", "page_size"]) == 0
    out = capsys.readouterr().out
    assert "3 pairs" in out and "1 rows unpaired or not ok" in out


def test_a_row_missing_on_one_side_is_not_paired():
    good, bad = tree_ab.paired(rows({("fa2", 16): 10.0, ("fa2", 32): 10.0}), rows({("fa2", 16): 11.0}))
    assert len(good) == 1 and len(bad) == 1
