"""Calibration points chosen by information per GPU second (validation/point_selection.py).

Synthetic Jacobians pin the greedy rule; the committed H200 calibration rows (a few workloads of
them, planned at the datasheet prior) pin it on real plans."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attnsim.errors import InputError
from attnsim.profiles import resolve_gpu
from attnsim.validation.measurements import measured_points
from attnsim.validation.point_cost import PointCosts
from attnsim.validation.point_selection import Candidate, check_covered, choose, jacobians, make_candidates, select_points
from attnsim.validation.sensitivity import OwnerJacobian

ROOT = Path(__file__).resolve().parents[2]
NO_START = PointCosts(start_s=0.0, compile_s=0.0)


def _synthetic(rows, cost_s=1.0, owner="fa2"):
    """Candidates with the given Jacobian rows (one owner, two parameters), each costing cost_s."""
    candidates = [Candidate(i, None, owner, 10.0, cost_s, 0.0, f"w{i}", "") for i in range(len(rows))]
    jac = OwnerJacobian(owner, (("fa2", "p0"), ("fa2", "p1")), tuple(range(len(rows))), np.array(rows, float))
    return candidates, {owner: jac}


def test_orthogonal_points_win_over_a_repeated_direction():
    # two budget units: the second pick must add the missing direction, not repeat the first's
    candidates, jacs = _synthetic([[1.0, 0.0], [0.9, 0.0], [0.0, 0.5], [0.3, 0.3]])
    picks = select_points(candidates, jacs, 2.0, NO_START).indices()
    assert sorted(picks) == [0, 2]


def test_a_point_that_moves_no_parameter_is_never_chosen():
    candidates, jacs = _synthetic([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    picks = select_points(candidates, jacs, 100.0, NO_START).indices()
    assert 0 not in picks and 3 not in picks and sorted(picks) == [1, 2]


def test_each_pick_is_explained_by_a_parameter_it_moves():
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(30, 2)) * (rng.random((30, 2)) < 0.5)  # half the entries exactly zero
    candidates, jacs = _synthetic(rows)
    selection = select_points(candidates, jacs, 12.0, NO_START)
    for pick in selection.picks:
        column = ["fa2.p0", "fa2.p1"].index(pick.reason)
        assert rows[pick.candidate.index, column] != 0.0


def test_cheap_points_are_preferred_at_equal_information():
    candidates, jacs = _synthetic([[1.0, 0.0], [1.0, 0.0]])
    candidates[0] = replace(candidates[0], row_s=3.0)
    assert select_points(candidates, jacs, 3.0, NO_START).indices()[0] == 1


def test_a_shared_workload_set_up_is_paid_once():
    candidates, jacs = _synthetic([[1.0, 0.0], [0.0, 1.0]], cost_s=0.5)
    candidates = [replace(c, setup_s=1.0, workload_key="same") for c in candidates]
    selection = select_points(candidates, jacs, 2.0, NO_START)
    assert len(selection.picks) == 2 and selection.total_s == pytest.approx(2.0)
    assert [p.cost_s for p in selection.picks] == pytest.approx([1.5, 0.5])


def test_regimes_keep_their_share_of_the_pool():
    # 30 points of regime "a", 10 of "b", all equally informative in their own parameter: 8 picks
    # take them 3 to 1, as a random draw would, however much more "a" would tell
    rows = [[1.0, 0.0]] * 30 + [[0.0, 0.1]] * 10
    candidates, jacs = _synthetic(rows)
    candidates = [replace(c, stratum="a" if c.index < 30 else "b") for c in candidates]
    picks = select_points(candidates, jacs, 8.0, NO_START).indices()
    assert sum(i < 30 for i in picks) == 6 and sum(i >= 30 for i in picks) == 2


def test_every_family_gets_a_point_before_regimes_are_filled():
    # one rare point carries the only "combine" launch: it comes first though its regime is tiny
    candidates, jacs = _synthetic([[1.0, 0.0]] * 20 + [[0.0, 0.01]])
    candidates = [replace(c, stratum="big", families=frozenset({"fa2"})) for c in candidates[:20]] + \
                 [replace(candidates[20], stratum="rare", families=frozenset({"fa2", "combine"}))]
    assert 20 in select_points(candidates, jacs, 2.0, NO_START).indices()[:2]


@pytest.fixture(scope="module")
def h200_pool():
    """The committed H200 calibration rows of nine workloads (MHA / GQA / MQA, one with the option
    variants), as candidates at the datasheet prior."""
    doc = json.loads((ROOT / "results" / "h200" / "calibration_data.json").read_text())
    points = pd.DataFrame(doc["calibration_data"]["points"])
    keys = points[["batch", "q_heads", "kv_heads", "head_dim", "contexts"]].astype(str).agg("/".join, axis=1)
    chosen = [k for k in dict.fromkeys(keys) if k.startswith(("1/", "3/"))][:6]
    chosen += [k for k in dict.fromkeys(keys) if "/8/1/" in k][:2]
    chosen += list(keys[points["options"] == "splits=1"][:1])  # a workload with the option variants
    rows = points[keys.isin(chosen)].reset_index(drop=True)
    prior = resolve_gpu("h200", "none")
    measured = measured_points(rows, prior)
    candidates = make_candidates([p.plan for p in measured], [p.requested for p in measured], prior)
    return candidates, prior, jacobians(candidates, prior)


@pytest.mark.parametrize("budget_s", [10.0, 12.0, 20.0])
def test_selection_respects_the_budget_and_covers_every_family(h200_pool, budget_s):
    candidates, prior, jacs = h200_pool
    selection = select_points(candidates, jacs, budget_s)
    assert selection.total_s <= budget_s
    check_covered(selection, candidates)  # raises if a family the pool exercises has no point
    more = select_points(candidates, jacs, budget_s + 5.0)
    assert len(more.picks) >= len(selection.picks)


def test_selection_is_deterministic(h200_pool):
    candidates, prior, _ = h200_pool
    first, second = choose(candidates, prior, 11.0), choose(candidates, prior, 11.0)
    assert first.indices() == second.indices()
    assert [p.reason for p in first.picks] == [p.reason for p in second.picks]


def test_real_picks_move_the_parameter_they_are_chosen_for(h200_pool):
    candidates, prior, jacs = h200_pool
    for pick in select_points(candidates, jacs, 12.0).picks:
        jac = jacs[pick.candidate.owner]
        row = jac.members.index(candidates.index(pick.candidate))
        assert jac.jacobian[row, jac.labels().index(pick.reason)] != 0.0


def test_a_parameter_no_plan_exercises_gets_no_sensitivity(h200_pool):
    # fa2 plans launch no merge: stream-K's fixup parameters are not fa2's, and a family's
    # parameters are zero on the points whose plans do not launch it
    _, _, jacs = h200_pool
    fd = jacs["flashdecoding"]
    combine = [i for i, (family, _) in enumerate(fd.keys) if family == "flashdecoding-combine"]
    assert combine, fd.keys
    # flashdecoding:splits=1 launches no combine: its combine columns are exactly zero
    no_combine = np.all(fd.jacobian[:, combine] == 0.0, axis=1)
    assert 0 < no_combine.sum() < len(fd.members)


def test_a_budget_that_leaves_a_family_out_is_an_error(h200_pool):
    candidates, prior, _ = h200_pool
    with pytest.raises(InputError, match="budget: .*leaves cost family"):
        choose(candidates, prior, PointCosts().start_s + 0.05)
    with pytest.raises(InputError, match="below the run's fixed cost"):
        choose(candidates, prior, 1.0)
