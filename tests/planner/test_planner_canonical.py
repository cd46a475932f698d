"""Canonical plans: one name per concrete plan (a hybrid without DP outputs is stream-K); the fastest
predicted plan runs and the ties within the band are named; `auto`, `plan` and `predict` agree."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from attnsim.planner import canonical
from attnsim.planner.choose import make_plan
from attnsim.planner.search import search
from attnsim.plans.spec import canonical_spec
from attnsim.predict import predict_records
from attnsim.reports.plan_report import compared, result_text
from attnsim.profiles import resolve_gpu
from attnsim.simulator.engine import simulate
from attnsim.simulator.workload import DecodeWorkload
from cli_helpers import json_items, run_cli

H200 = resolve_gpu("h200")  # 132 SMs; the stream-K kernel holds 264 resident CTAs
WORKLOADS = (DecodeWorkload.build(1, 32, 8, 128, 4096), DecodeWorkload.build(3, 32, 8, 64, [700, 20000, 3000]),
             DecodeWorkload.build(5, 64, 8, 128, 777), DecodeWorkload.build(2, 8, 1, 128, 60000),
             DecodeWorkload.build(8, 64, 8, 128, 51200))
SHAPE = canonical.Shape(capacity=264, sms=132, total_tiles=5000, max_tiles=64, tile=64)


@pytest.mark.parametrize("grid", [48, 132, 200, 264])
def test_a_hybrid_without_dp_outputs_is_stream_k_bit_for_bit(grid):
    w = WORKLOADS[1]
    hybrid, streamk = (make_plan(s, w, H200) for s in (f"hybrid:grid={grid},dp_outputs=0", f"streamk:grid={grid}"))
    assert canonical.canonical(hybrid.name, hybrid.options.set()) == (streamk.name, streamk.options.set())
    a, b = hybrid.schedule.attention.segments, streamk.schedule.attention.segments
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    assert simulate(hybrid.schedule, H200).total_us == simulate(streamk.schedule, H200).total_us
    assert canonical.canonical(hybrid.name, {"grid": grid, "dp_outputs": grid}) == (hybrid.name, {"grid": grid,
                                                                                                 "dp_outputs": grid})


@pytest.mark.parametrize("w", WORKLOADS, ids=lambda w: f"b{w.batch}-{w.max_context}")
def test_every_plan_the_search_names_is_named_once_and_concretely(w):
    result = search(w, H200)
    specs = [e.spec for e in result.ranked] + [h.plan.spec for h in result.heuristics]
    assert len({e.spec for e in result.ranked}) == len(result.ranked)
    for spec in specs:
        assert canonical_spec(spec) == spec and make_plan(spec, w, H200).spec == spec  # concrete: resolves to itself
        strategy, _, options = spec.partition(":")
        assert canonical.canonical(strategy, dict(o.split("=") for o in options.split(",")) if options else {})[0] \
            == strategy


def test_one_concrete_plan_of_two_entries_is_one_candidate_named_by_the_earlier():
    # a uniform batch: balanced's 16-tile chunks of 128-tile outputs are FlashDecoding's 8 split ranges, the
    # same kernels, CTAs, partials and combine; on a ragged batch balanced's longest-first order differs
    uniform = DecodeWorkload.build(4, 32, 8, 128, 8192)
    fd, chunks = (make_plan(s, uniform, H200) for s in ("flashdecoding:splits=8", "balanced:chunk_tokens=1024"))
    keys = [canonical.concrete_key(p.strategy.kernel_for(uniform, p.config).name, p.schedule) for p in (fd, chunks)]
    assert keys[0] == keys[1]
    ranked = search(uniform, H200).ranked
    assert "flashdecoding:splits=8" in [e.spec for e in ranked]
    assert "balanced:chunk_tokens=1024" not in [e.spec for e in ranked]
    assert len({e.concrete for e in ranked}) == len(ranked)
    # a rule that sets the same plan under the other name is shown as the choice, not as a tie (the two
    # entries searched alone: which entry wins the whole search is the profile's business, not this rule's)
    paged = search(DecodeWorkload.build(4, 32, 8, 128, 8192, page_size=16), H200, names=("flashdecoding", "balanced"))
    sglang = next(h.plan for h in paged.heuristics if h.name == "sglang-rule")
    assert (paged.chosen.spec, sglang.spec) == ("flashdecoding:splits=8", "balanced:chunk_tokens=1024")
    assert compared(paged, sglang) | {"time_us": 0} == {"spec": sglang.spec, "time_us": 0, "regret_pct": 0.0,
                                                      "tie": False, "same_plan_as_choice": True}
    assert result_text(paged).count("= the choice") == 1
    ragged = DecodeWorkload.build(3, 32, 8, 128, [3000, 8192, 5000])
    fd, chunks = (make_plan(s, ragged, H200) for s in ("flashdecoding:splits=8", "balanced:chunk_tokens=1024"))
    assert canonical.concrete_key("k", fd.schedule) != canonical.concrete_key("k", chunks.schedule)


@pytest.mark.parametrize("grid,score", [(264, 0), (132, 1), (198, 2), (33, 2), (263, 3), (122, 3)])
def test_grid_regularity(grid, score):
    assert canonical.form_of({"grid": grid}, 1, SHAPE).irregularity == score
    few = canonical.Shape(capacity=264, sms=132, total_tiles=100, max_tiles=10, tile=64)
    assert canonical.form_of({"grid": 100}, 1, few).irregularity == 0  # every tile: stream-K's natural grid


@pytest.mark.parametrize("options,score", [({"splits": 8}, 0), ({"splits": 11}, 2), ({"splits": 1}, 0),
                                           ({"chunk_tokens": 1024}, 0), ({"chunk_tokens": 384}, 2),
                                           ({"chunk_tokens": 4096}, 0), ({"grid": 264, "dp_outputs": 264}, 1), ({}, 0)])
def test_split_chunk_and_hybrid_regularity(options, score):
    assert canonical.form_of(options, 1, SHAPE).irregularity == score


def plan(spec: str, time_us: float, launches: int, **options):
    form = canonical.form_of(options, launches, SHAPE)
    return SimpleNamespace(spec=spec, time_us=time_us, form=form)


def test_pick_runs_the_fastest_and_names_the_ties_and_their_simplest():
    fastest = plan("splitkv:splits=11", 100.0, 1, splits=11)
    pow2 = plan("splitkv:splits=8", 104.0, 1, splits=8)
    two_launch = plan("flashdecoding:splits=8", 101.0, 2, splits=8)
    outside = plan("streamk:grid=264", 106.0, 1, grid=264)
    chosen, tied = canonical.pick([fastest, two_launch, pow2, outside], band_pct=5.0)
    assert chosen is fastest and tied == (fastest, two_launch, pow2)
    why = canonical.why(chosen, fastest, tied, 5.0)
    assert why.startswith("the fastest predicted; 2 other plan(s) within the 5.0% tie band")
    assert "the simplest of them, splitkv:splits=8" in why and "4.0% slower" in why
    equal = plan("splitkv:splits=8", 100.0, 1, splits=8)
    assert canonical.pick([fastest, equal], 5.0)[0] is equal  # an equal prediction: the simpler runs
    combined = plan("balanced:chunk_tokens=384", 100.0, 2, chunk_tokens=384)
    one_launch = plan("streamk:grid=264", 100.0, 1, grid=264)
    assert canonical.pick([combined, one_launch], 5.0)[0] is combined  # ... of the fastest's launch count
    assert canonical.why(fastest, fastest, (fastest,), 5.0).endswith("no other plan within the 5.0% tie band")


def test_auto_runs_the_fastest_predicted_plan():
    for w in WORKLOADS:
        result = search(w, H200)
        assert result.chosen.time_us == result.fastest.time_us
        assert make_plan("auto", w, H200).spec == result.chosen.spec
        record = predict_records(w, H200, ["auto"])[0]
        assert (record["plan_spec"], record["time_us"]) == (result.chosen.spec, round(result.chosen.time_us, 3))


@pytest.mark.parametrize("args", [["--context", "4k"], ["--context", "4k", "--kv-tile", "32"],
                                  ["--contexts", "700,20000,3000", "--head-dim", "64"],
                                  ["--batch", "5", "--q-heads", "64", "--context", "777"]])
def test_plan_and_predict_auto_agree_and_plan_says_why(args, capsys):
    shape = ["--gpu", "h200", "--q-heads", "32", "--kv-heads", "8", *args]
    shape = shape if "--q-heads" not in args else ["--gpu", "h200", "--kv-heads", "8", *args]
    code, out, err = run_cli(["plan", *shape, "--format", "json"], capsys)
    assert code == 0, err
    (data,) = json_items(out, "plans")
    assert data["why"] and data["fastest"]["spec"] and data["fastest"]["regret_pct"] <= 0
    code, out, err = run_cli(["predict", *shape, "--strategy", "auto", "--format", "json"], capsys)
    assert code == 0, err
    assert json_items(out)[0]["plan_spec"] == data["plan"]["spec"]
    code, out, _ = run_cli(["plan", *shape], capsys)
    why = next(line for line in out.splitlines() if line.startswith("  why: "))
    tie_line = next(line for line in out.splitlines() if line.startswith("tie band: "))
    assert ("the fastest predicted" in why or "the simplest" in why) and not tie_line.endswith("tie")
