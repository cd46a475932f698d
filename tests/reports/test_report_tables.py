"""Tables and findings derived from the frames, and the timeline's idle/wave accounting."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from attnsim.reports.occupancy import kernel_configs, occupancy_table
from attnsim.reports.summary import fastest_runs
from attnsim.reports.tables import speedup_table
from attnsim.reports.timeline import _union_length, sm_idle_fraction, timeline_table
from attnsim.validation.tables import error_table
from attnsim.reports.whatif import whatif_table


def test_speedup_table_has_each_strategy_and_the_fastest(predictions):
    table = speedup_table(predictions)
    assert len(table) == 4  # 3 uniform contexts + 1 ragged mix
    times = table[["fa2 µs", "flashdecoding µs", "streamk µs"]]
    assert (table["fastest"] == times.idxmin(axis=1).str.replace(" µs", "")).all()
    assert table["context"].tolist()[:3] == ["1k", "8k", "64k"] and table["context"].iloc[3] == "3 seqs"
    assert ((table["fastest % of floor"] > 0) & (table["fastest % of floor"] <= 100)).all()


def test_whatif_table_compares_with_the_first_gpu(whatif):
    table = whatif_table(whatif)
    assert {"h100-sxm µs", "l40s µs", "h100-sxm best", "l40s vs h100-sxm"} <= set(table.columns)
    ratio = (table["h100-sxm µs"] / table["l40s µs"]).round(2)
    assert table["l40s vs h100-sxm"].tolist() == pytest.approx(ratio.tolist(), abs=0.011)


def test_occupancy_merges_launches_of_one_cta_shape(occupancy):
    configs = kernel_configs(occupancy)
    attention = configs[configs["kernel"].str.endswith("/ attention")]
    for gpu, rows in attention.groupby("gpu"):  # h100 (calibrated kernel shapes), l40s (transferred from h100)
        assert len(rows) == len(rows[["threads", "regs_per_thread", "smem_bytes"]].drop_duplicates()), gpu
        named = [s for k in rows["kernel"] for s in k.removesuffix(" / attention").split(", ")]
        assert sorted(named) == ["fa2", "flashdecoding", "streamk"], gpu
    # A transferred profile plans the source's compiled kernel shapes.
    assert (attention[attention["gpu"] == "l40s"]["kernel"].tolist()
            == attention[attention["gpu"] == "h100-sxm"]["kernel"].tolist())
    table = occupancy_table(occupancy)
    assert table["CTAs/SM"].tolist() == configs["blocks_per_sm"].tolist()
    assert set(table["binding"]) <= {"warps", "registers", "shared memory", "blocks"}


def test_error_table_all_row_is_over_every_point(measurements):
    table = error_table(measurements).set_index("strategy")
    assert table.loc["all", "n"] == len(measurements)
    assert table.loc["all", "mape_pct"] == pytest.approx(measurements["abs_pct_error"].mean())
    assert table.loc["all", "bias_pct"] == pytest.approx(measurements["pct_error"].mean())
    assert 0 <= table.loc["all", "within_25pct_share"] <= 100


def test_fastest_runs_names_each_change_of_winner():
    rows = pd.DataFrame({"context_len": [1024, 1024, 4096, 4096, 16384, 16384],
                         "strategy": ["a", "b"] * 3, "time_us": [1, 2, 2, 1, 3, 1]})
    assert fastest_runs(rows) == "a up to 1k, b from 4k"
    assert fastest_runs(rows[rows["strategy"] == "b"]) == "b at every context"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 30)), min_size=1, max_size=12))
def test_union_length_matches_a_unit_grid(intervals):
    starts = np.array([a for a, _ in intervals], float)
    ends = starts + np.array([d for _, d in intervals], float)
    covered = np.zeros(131, bool)
    for a, b in zip(starts.astype(int), ends.astype(int)):
        covered[a:b] = True
    assert _union_length(starts, ends) == covered.sum()


def test_stream_k_leaves_fewer_sms_idle_than_fa2_on_a_ragged_batch(timelines):
    idle = {r.schedule.strategy: sm_idle_fraction(r) for r in timelines}
    assert all(0 <= v < 1 for v in idle.values())
    assert idle["streamk"] < idle["fa2"]
    table = timeline_table(timelines)
    assert table["strategy"].tolist() == ["fa2", "flashdecoding", "streamk"]
    assert table.loc[table["strategy"] == "fa2", "fix-ups"].item() == 0
