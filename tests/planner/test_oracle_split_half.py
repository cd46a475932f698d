"""scripts/oracle_split_half.py: a fixed seeded split of the oracle workloads, the doubled-SM bound
(2S / g x the grid-S prediction, only at S < g < 2S), and a fit of rho that recovers a known value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from script_helpers import load_script

SMS = 132


@pytest.fixture(scope="module")
def script():
    return load_script("oracle_split_half")


def _streamk_rows(grids, predicted, workload=1, strategy="streamk"):
    return pd.DataFrame({"batch": workload, "q_heads": 32, "kv_heads": 4, "head_dim": 128, "contexts": "50000",
                         "dtype": "float16", "strategy": strategy, "grid": grids, "predicted_us": predicted})


def test_split_is_seeded_disjoint_and_half_of_the_workloads(script):
    rows = pd.concat([_streamk_rows([SMS, 2 * SMS], [1.0, 1.0], workload=b) for b in range(1, 12)], ignore_index=True)
    first, again, other = (script.split_workloads(rows, s) for s in (20, 20, 21))
    assert first.equals(again) and not first.equals(other)
    assert rows[first]["batch"].nunique() == 11 // 2
    assert rows.groupby("batch").apply(lambda g: first[g.index].nunique() == 1, include_groups=False).all()


def test_doubled_sm_bound_scales_grid_s_by_2s_over_g_between_one_and_two_ctas_per_sm(script):
    rows = _streamk_rows([SMS // 2, SMS, 165, 2 * SMS], [150.0, 100.0, 90.0, 85.0])
    bound = script.doubled_sm_bound(rows, SMS)
    assert np.isnan(bound[[0, 1, 3]]).all()
    assert bound[2] == pytest.approx(100.0 * 2 * SMS / 165)
    assert script.doubled_sm_bound(_streamk_rows([165], [90.0]), SMS).isna().all()  # grid S not measured


def test_fit_rho_recovers_the_rate_the_measurements_were_made_with(script):
    grids = [SMS, 148, 165, 182, 198, 231]
    rows = pd.concat([_streamk_rows(grids, [100.0 * k, 95.0 * k, 93.0 * k, 91.0 * k, 90.0 * k, 89.0 * k], workload=k)
                      for k in (1, 2, 3)], ignore_index=True)
    bound = script.doubled_sm_bound(rows, SMS)
    rows["time_us"] = script.with_sm_sharing(rows, bound, 1.4)
    assert script.fit_rho(rows, bound) == pytest.approx(1.4)
