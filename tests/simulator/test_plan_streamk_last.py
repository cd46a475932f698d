"""Stream-K's last-arrival epilogue as planned and modelled (simulator/partition/streamk_last.py):
the same segments as the tree, every contributor a publisher, one LAST_ARRIVAL row per straddled
output with its contributors in KV order; the engine bills the merge to the contributor that
publishes last, priced with the split-KV family's merge terms (borrowed), and nobody waits.
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim.simulator import cost, engine, merge_cost
from attnsim.simulator.hardware import PRESETS
from attnsim.simulator.schedule import LAST_ARRIVAL, ROLE_COMPLETE, ROLE_HOST, ROLE_PEER
from attnsim.simulator.workload import DecodeWorkload
from plan_helpers import plan
from sim_helpers import assert_common_invariants, segments_by_output

H100 = PRESETS["h100-sxm"]


def workload_of(batch, kv_heads, group, contexts) -> DecodeWorkload:
    return DecodeWorkload.build(batch, kv_heads * group, kv_heads, 128, list(contexts))


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 4), kv_heads=st.sampled_from([1, 2, 8]), group=st.sampled_from([1, 4]),
       contexts=st.lists(st.integers(1, 20000), min_size=4, max_size=4), grid=st.integers(2, 200),
       strategy=st.sampled_from(["streamk", "hybrid"]))
def test_same_segments_as_the_tree_every_contributor_publishes(batch, kv_heads, group, contexts, grid, strategy):
    w = workload_of(batch, kv_heads, group, contexts[:batch])
    tree = plan(f"{strategy}:grid={grid}", w, H100)
    last = plan(f"{strategy}:grid={grid},epilogue=last", w, H100)
    assert_common_invariants(last)
    a, b = tree.attention.segments, last.attention.segments
    for field in ("cta", "seq", "kv_head", "q_block", "first_tile", "n_tiles", "kv_bytes"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert (b.role == np.where(a.role == ROLE_HOST, ROLE_PEER, a.role)).all()
    red = last.reductions
    assert (red.host_cta == LAST_ARRIVAL).all() and len(red) == len(tree.reductions)
    rows_of = segments_by_output(last)
    cta_kv = np.cumsum(b.kv_bytes)
    for r in range(len(red)):
        rows = rows_of[(int(red.seq[r]), int(red.kv_head[r]), int(red.q_block[r]))]
        assert len(rows) == len(red.peers_of(r)) >= 2  # every segment of a straddled output contributes
        in_kv_order = sorted(rows, key=lambda i: b.first_tile[i])
        assert red.peers_of(r).tolist() == b.cta[in_kv_order].tolist()
        # a contributor publishes once its CTA has streamed every segment up to and including this one
        first_row = np.searchsorted(b.cta, b.cta[in_kv_order])
        done = cta_kv[in_kv_order] - cta_kv[first_row] + b.kv_bytes[first_row]
        assert np.array_equal(red.peer_done_bytes[red.peer_offsets[r]:red.peer_offsets[r + 1]], done)
    assert (b.role[[i for rows in rows_of.values() if len(rows) == 1 for i in rows]] == ROLE_COMPLETE).all()


def test_the_merge_lands_on_the_contributor_that_publishes_last():
    """MQA at batch 1: one output over every CTA. The CTAs that publish it in their first segment are
    done with it before they end; the merge (split-KV's fix-up for that many partials) is billed
    once, to the contributor with the latest publication."""
    w = DecodeWorkload.build(2, 8, 1, 128, [30000, 3000])
    sched = plan("streamk:grid=16,epilogue=last", w, H100)
    attn, red = sched.attention, sched.reductions
    assert attn.merge_family == "splitkv"
    base = engine._simulate_launch(sched, attn, H100, 0.0)
    slots = engine.resident_capacity(H100, attn.resources)
    work = cost.cta_work_bytes(attn)
    fixed = cost.cta_fixed_us(H100.cost_for(attn.family), attn, sched)
    _, _, ready, _, clock = engine._dispatch(sched, attn, work, fixed, slots,
                                             cost.bandwidth_model(H100, attn, sched))
    end = ready + fixed
    arrival = engine._arrival_us(sched, attn, end, clock)
    assert (arrival <= end[red.peer_cta] + 1e-9).all()
    first_seg_peer = red.peer_done_bytes < np.bincount(attn.segments.cta, weights=attn.segments.kv_bytes)[red.peer_cta]
    assert first_seg_peer.any() and (arrival[first_seg_peer] < end[red.peer_cta[first_seg_peer]]).all()
    merge = merge_cost.last_arrival_merge_us(H100.cost_for("splitkv"), red, arrival, attn.grid, w)
    n_peers = np.diff(red.peer_offsets)
    params = H100.cost_for("splitkv")
    # group 8 at q_len 1: 8 rows, two row groups of 4; each merges its peers 8 at a time (d 128), one
    # pipeline over both groups: + 1 prologue in all
    rounds = [2 * -(-n // 8) + 1 for n in n_peers]
    assert merge.sum() == pytest.approx(sum(params.fixup_fixed_us + params.fixup_per_peer_us * r for r in rounds))
    for r in range(len(red)):
        peers = red.peers_of(r)
        latest = peers[np.argmax(arrival[red.peer_offsets[r]:red.peer_offsets[r + 1]])]
        assert merge[latest] > 0
    assert base.end_us == pytest.approx(float((end + merge).max()), rel=0.05)


def test_merge_terms_are_split_kv_s_and_the_tree_does_not_read_them():
    w = DecodeWorkload.build(1, 32, 8, 128, 20000)
    slower = dataclasses.replace(H100.cost_for("splitkv"), fixup_fixed_us=H100.cost_for("splitkv").fixup_fixed_us + 50)
    gpu = dataclasses.replace(H100, cost={**H100.cost, "splitkv": slower})
    for spec, moves in (("streamk:grid=132,epilogue=last", True), ("streamk:grid=132", False)):
        before = engine.simulate(plan(spec, w, H100), H100).total_us
        after = engine.simulate(plan(spec, w, gpu), gpu).total_us
        assert (after > before + 40) == moves, spec


def test_no_straddling_output_no_merge_same_time_as_the_tree():
    """8 outputs of 4 tiles on 8 CTAs: nothing straddles, so both epilogues are the same plan."""
    w = DecodeWorkload.build(1, 32, 8, 128, 256)
    tree, last = plan("streamk:grid=8,kv_tile_tokens=64", w, H100), plan("streamk:grid=8,kv_tile_tokens=64,epilogue=last", w, H100)
    assert len(last.reductions) == 0
    assert engine.simulate(last, H100).total_us == engine.simulate(tree, H100).total_us


def test_default_stays_the_tree_and_auto_never_picks_last():
    w = DecodeWorkload.build(3, 32, 8, 128, [5000, 70000, 100])
    assert "epilogue" not in plan("streamk", w, H100).options
    assert "epilogue" not in plan("auto", w, H100).options
    from attnsim.planner.choose import make_plan

    assert make_plan("streamk:epilogue=tree", w, H100).spec == make_plan("streamk", w, H100).spec  # one name per plan


def test_predict_takes_the_epilogue_for_stream_k_plans_only(capsys):
    from cli_helpers import json_items, run_cli

    args = ["predict", "--gpu", "h200", "--batch", "1", "--q-heads", "32", "--kv-heads", "1", "--context", "64k",
            "--format", "json"]
    times = {}
    for extra in ([], ["--epilogue", "tree"], ["--epilogue", "last"]):
        code, out, _ = run_cli(args + ["--strategy", "streamk"] + extra, capsys)
        assert code == 0
        times[tuple(extra)] = json_items(out)[0]["time_us"]
    assert times[()] == times[("--epilogue", "tree")] != times[("--epilogue", "last")]
    code, _, err = run_cli(args + ["--strategy", "fa2", "--epilogue", "last"], capsys)
    assert code == 2 and "--epilogue applies to streamk, hybrid" in err
