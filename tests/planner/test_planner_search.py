"""The planner chooses the model's best plan among its candidates (pruning never drops it), its
predictions are exactly `predict_one`'s, ties are the plans within the tie band either way, and
`auto` resolves to the chosen concrete plan for every consumer."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.planner import candidates as cand, canonical
from attnsim.planner.search import Evaluator, distinct, search
from attnsim.planner.tieband import DEFAULT_TIE_BAND_PCT, tie_band
from plan_helpers import plan_for
from attnsim.planner.choose import make_plan
from attnsim.plans.spec import parse_plan_spec
from attnsim.simulator import bands
from attnsim.simulator.provenance import PADDED_BAND_PCT
from attnsim.simulator.hardware import from_name
from attnsim.simulator.partition.common import PlanConfig
from attnsim.predict import predict_one, predict_records
from attnsim.profiles import resolve_gpu
from attnsim.simulator.engine import simulate
from attnsim.simulator.workload import DecodeWorkload

H200 = resolve_gpu("h200")  # the calibrated profile
SMALL = (DecodeWorkload.build(1, 32, 8, 128, 4096), DecodeWorkload.build(3, 32, 8, 64, [700, 20000, 3000]),
         DecodeWorkload.build(16, 32, 32, 128, 2000), DecodeWorkload.build(2, 8, 1, 128, 60000))


def every_candidate(workload, gpu) -> tuple:
    """Brute force: every candidate and heuristic plan simulated (no pruning), one per concrete plan,
    fastest first."""
    ev = Evaluator(workload, gpu, PlanConfig())
    pool = [c for n in strategies.candidates(workload) for c in cand.candidates_for(ev.context(n), {})]
    return distinct([ev.run(c) for c in pool] + [ev.heuristic(h) for h in strategies.heuristics_for(workload)])


def brute_choice(workload, gpu):
    plans = every_candidate(workload, gpu)
    return plans, canonical.pick(plans, tie_band(gpu, plans[0].family, workload)[0])[0]


@pytest.mark.parametrize("workload", SMALL, ids=lambda w: f"b{w.batch}-kv{w.kv_heads}-{w.max_context}")
def test_the_choice_is_brute_forces_and_its_prediction_is_predict_ones(workload):
    result = search(workload, H200)
    plans, choice = brute_choice(workload, H200)
    assert result.fastest.time_us == plans[0].time_us and result.chosen.spec == choice.spec
    for e in (result.chosen, result.fastest):  # bit-identical to predict_one of its spec
        assert e.time_us == predict_one(e.spec, workload, H200).total_us
    assert [e.time_us for e in result.ranked] == sorted(e.time_us for e in result.ranked)
    assert result.simulated <= len(plans) + len(strategies.heuristics_for(workload))
    assert result.generated >= result.simulated - len(strategies.heuristics_for(workload))


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 6), kv_heads=st.sampled_from([1, 2, 8]), group=st.sampled_from([1, 4, 8]),
       head_dim=st.sampled_from([64, 128]), contexts=st.lists(st.integers(16, 40000), min_size=1, max_size=6),
       serving=st.sampled_from([{}, {}, {"page_size": 16}, {"kv_dtype": "fp8"}, {"q_len": 4}, {"q_len": 8}]),
       keep=st.sampled_from([1, 1, 3]))
def test_pruning_never_drops_the_best_nor_a_tie(batch, kv_heads, group, head_dim, contexts, serving, keep):
    # serving inputs bring their own families' bands (the stop follows the fastest plan's); keep: auto:tune=K's
    lengths = (contexts * batch)[:batch]
    workload = DecodeWorkload.build(batch, kv_heads * group, kv_heads, head_dim, lengths, **serving)
    result = search(workload, H200, PlanConfig(tune=keep if keep > 1 else None))
    plans, choice = brute_choice(workload, H200)
    assert result.fastest.time_us == plans[0].time_us and result.chosen.spec == choice.spec
    reach = plans[0].time_us * (1 + result.tie_band_pct / 100)  # every tie found, one per concrete plan
    assert sorted(e.time_us for e in result.ties) == sorted(e.time_us for e in plans
                                                            if e.time_us <= reach and e.concrete != result.chosen.concrete)
    assert [e.time_us for e in result.ranked[:keep]] == [e.time_us for e in plans[:keep]]


@pytest.mark.parametrize("workload", SMALL, ids=lambda w: f"b{w.batch}-kv{w.kv_heads}-{w.max_context}")
def test_a_tuned_search_keeps_the_k_fastest_plans_whatever_their_band(workload):
    # auto:tune=K times the model's K fastest distinct plans: the search simulates them even past the tie band
    plans = every_candidate(workload, H200)
    for k in (1, 6, 12):
        ranked = search(workload, H200, PlanConfig(tune=k)).ranked
        assert [e.time_us for e in ranked[:k]] == [e.time_us for e in plans[:k]]


def test_each_entrys_best_plan_is_found_where_the_search_pruned_the_entry():
    # 2 x 60k tokens 8/1 d 128: fa2's two CTAs can neither win nor tie, so the search never simulates it; the
    # report's runners-up still show each entry's fastest plan (PlanResult.entry_bests), worked out when asked
    workload = SMALL[3]
    result = search(workload, H200)
    assert "fa2" not in {e.strategy for e in result.ranked}
    ev = Evaluator(workload, H200, PlanConfig())
    for e in result.entry_bests:
        brute = min(ev.run(c).time_us for c in cand.candidates_for(ev.context(e.strategy), {}))
        assert e.time_us == brute, e.spec
    assert {e.strategy for e in result.entry_bests} == {c.strategy for _, c in result.bounded} >= {"fa2", "streamk"}
    assert [e.time_us for e in result.entry_bests] == sorted(e.time_us for e in result.entry_bests)


def test_ties_are_the_plans_within_the_band_of_the_fastest():
    result = search(SMALL[0], H200)
    band = result.tie_band_pct / 100
    assert all(e.time_us <= result.fastest.time_us * (1 + band) for e in result.ties)
    assert all(e in result.ties for e in result.ranked if e.time_us <= result.fastest.time_us * (1 + band)
               and e is not result.chosen)
    assert result.chosen not in result.ties and result.is_tie(result.chosen) and result.is_tie(result.fastest)


def test_tie_band_comes_from_the_profile():
    """Per-regime error bands first (half-width), then a stated expected error, then the fit's MAPE."""
    w = SMALL[0]
    family, kv = search(w, H200).chosen.family, w.kv_bytes()
    lo, hi = bands.band(H200.error_bands, family, kv, H200.profile_source)
    label = bands.BIN_LABELS[bands.kv_bin(kv)]
    assert tie_band(H200, family, w) == ((hi - lo) / 2, f"error band of {family} at {label} KV (half-width)")
    assert tie_band(from_name("h200"), family, w) == (DEFAULT_TIE_BAND_PCT, "default")  # datasheet figures
    no_bands = dataclasses.replace(H200, error_bands={})
    pct, source = tie_band(no_bands, family, w)
    assert source == f"calibration MAPE of {family}" and 1.0 < pct < 10.0
    stated = dataclasses.replace(no_bands, expected_error_pct=7.5)
    assert tie_band(stated, family, w) == (7.5, "profile expected_error_pct")


@pytest.mark.parametrize("regime,fields", [("fp8", {"kv_dtype": "fp8"}), ("paged", {"page_size": 16}),
                                           ("qlen", {"q_len": 4})])
def test_a_serving_plans_tie_band_is_its_regimes_measured_band(regime, fields):
    """Paged, fp8 and verify plans tie within the band measured on their serving sweep (the band their
    predictions print), not the decode band; without a measured serving band, the decode rules."""
    w = DecodeWorkload.build(4, 32, 8, 128, 16384, **fields)
    family = "streamk"
    lo, hi = H200.serving_terms["bands"]["regimes"][regime][family][bands.kv_bin(w.kv_bytes())]
    pct, source = tie_band(H200, family, w)
    assert pct == (hi - lo) / 2 and source.startswith(f"{regime} error band of {family}")
    dlo, dhi = bands.band(H200.error_bands, family, w.kv_bytes())
    assert pct != (dhi - dlo) / 2
    unmeasured = dataclasses.replace(H200, serving_terms={})
    label = bands.BIN_LABELS[bands.kv_bin(w.kv_bytes())]
    assert tie_band(unmeasured, family, w) == ((dhi - dlo) / 2, f"error band of {family} at {label} KV (half-width)")
    assert tie_band(from_name("h200"), family, w) == (DEFAULT_TIE_BAND_PCT, "default")  # datasheet: as decode


def test_auto_resolves_to_the_chosen_plan_for_every_consumer():
    workload = SMALL[1]
    chosen = search(workload, H200).chosen
    resolved = make_plan("auto", workload, H200)
    assert (resolved.strategy.name, resolved.requested, resolved.spec) == (chosen.strategy, "auto", chosen.spec)
    schedule = plan_for("auto", workload, H200)
    assert schedule.strategy == chosen.strategy and schedule.grid == chosen.grid
    record = predict_records(workload, H200, ["auto", "streamk"])[0]
    assert (record["strategy"], record["plan_spec"], record["time_us"]) == ("auto", chosen.spec, round(chosen.time_us, 3))
    assert record["plan"] == {"strategy": chosen.strategy, "options": dict(chosen.options)}
    assert make_plan("planner", workload, H200).spec == chosen.spec  # the alias


def test_batch_invariant_plan_depends_on_the_shape_alone():
    """The same fixed plan in every batch of one model shape; its cost vs the unconstrained choice is
    reported (tests/planner/test_planner_invariant.py: which plans, and why)."""
    mine = 50_000
    specs = set()
    for others in ((), (300,), (100_000, 2000, 7)):
        workload = DecodeWorkload.build(1 + len(others), 32, 8, 128, [mine, *others])
        result = search(workload, H200, PlanConfig(batch_invariant=1))
        # the fixed plan may even beat the unconstrained search (a split count it skips: test_planner_invariant.py)
        assert result.batch_invariant and result.fastest in result.ranked
        assert result.why.startswith("batch-invariant: ")
        specs.add(make_plan("auto", workload, H200, PlanConfig(batch_invariant=1)).spec)
    assert len(specs) == 1 and specs.pop().split(":")[0] in ("fa2", "balanced", "flashdecoding", "splitkv")


def test_pins_restrict_the_search_and_bad_ones_name_their_field():
    workload = SMALL[0]
    pinned = search(workload, H200, PlanConfig(grid=132))
    assert {e.strategy for e in pinned.ranked} <= {"streamk", "hybrid", "balanced"}
    assert all(dict(e.options).get("grid", 132) == 132 for e in pinned.ranked if e.strategy != "balanced")
    assert search(workload, H200, names=("flashdecoding",)).chosen.strategy == "flashdecoding"
    for options, names, field in ((PlanConfig(grid=10_000), ("streamk",), "grid"),
                                  (PlanConfig(splits=65), None, "splits"),  # 4096 tokens = 64 tiles of 64
                                  (PlanConfig(), ("torch-flash",), "strategy"),
                                  (PlanConfig(chunk_tokens=100), None, "chunk_tokens")):
        with pytest.raises(InputError) as err:
            search(workload, H200, options, names)
        assert err.value.field == field


def test_the_search_is_bounded():
    """Candidate sets follow candidates.py's bounds: splits <= one resident wave, grids <= capacity."""
    workload = SMALL[0]
    result = search(workload, H200)
    for e in result.ranked:
        options = dict(e.options)
        assert options.get("splits", 1) * 8 <= 396 and options.get("grid", 1) <= 264
    assert result.generated >= 30


def test_plans_the_engine_cannot_tell_apart_are_simulated_once(monkeypatch):
    # 3 x 6/2 d 64, 2,186 tokens: FlashDecoding's 18 splits and balanced's 128-token chunks cut it alike (one
    # concrete plan); the second is named and optioned as itself, priced as predict_one prices it, unsimulated
    from attnsim.planner import search as search_module

    workload = DecodeWorkload.build(3, 6, 2, 64, 2186)
    gpu = resolve_gpu("h200")
    runs = []
    monkeypatch.setattr(search_module, "simulate", lambda s, g: runs.append(s.strategy) or simulate(s, g))
    ev = Evaluator(workload, gpu, PlanConfig())
    fd, bal = (ev.run(ev.context(name).candidate(0, 0.0, **options))
               for name, options in (("flashdecoding", {"splits": 18}), ("balanced", {"chunk_tokens": 128})))
    assert fd.concrete == bal.concrete and runs == ["flashdecoding"]
    assert (fd.spec, bal.spec) == ("flashdecoding:splits=18", "balanced:chunk_tokens=128")
    assert bal.time_us == predict_one(bal.spec, workload, gpu).total_us == fd.time_us
    assert (bal.splits, fd.splits) == (predict_one(bal.spec, workload, gpu).schedule.splits, 18)


def test_the_engine_key_sees_every_launch_field():
    # twins are found by Schedule.engine_key: any field of a launch the engine might read tells two plans apart,
    # however it was added; the plan's name and strategy, which the engine does not read, do not
    workload = DecodeWorkload.build(3, 6, 2, 64, 2186)
    gpu = resolve_gpu("h200")
    schedule = predict_one("flashdecoding:splits=18", workload, gpu).schedule
    twin = predict_one("balanced:chunk_tokens=128", workload, gpu).schedule
    assert twin.engine_key() == schedule.engine_key() and twin.strategy != schedule.strategy
    attention = schedule.attention
    for changed in (dataclasses.replace(attention, stream_warps=attention.stream_warps + 1.0),
                    dataclasses.replace(attention, math_family="fa2"),
                    dataclasses.replace(attention, cta_write_bytes=attention.cta_write_bytes * 2.0)):
        other = dataclasses.replace(schedule, launches=(changed, *schedule.launches[1:]))
        assert other.engine_key() != schedule.engine_key()
        assert other.engine_digest() == schedule.engine_digest()  # keys of one digest are compared: both simulated
        ev = Evaluator(workload, gpu, PlanConfig())
        assert ev.simulated(other) is not ev.simulated(schedule) and len(ev._simulated[schedule.engine_digest()]) == 2
        assert ev.simulated(twin).total_us == ev.simulated(schedule).total_us


@pytest.mark.parametrize("family", ["fa2", "splitkv", "streamk"])
def test_a_padded_head_dim_ties_plans_within_its_measured_residuals(family):
    """The H100 measured the padded plans apart by more than the decode bands allow: a padded workload's tie band
    is at least PADDED_BAND_PCT's half-width, and says so; its power-of-two twin's is the decode band."""
    gpu = resolve_gpu("h200")
    padded, pow2 = DecodeWorkload.build(8, 32, 32, 160, 32768), DecodeWorkload.build(8, 32, 32, 256, 32768)
    band, source = tie_band(gpu, family, padded)
    lo, hi = PADDED_BAND_PCT
    assert band >= (hi - lo) / 2.0 and band >= tie_band(gpu, family, pow2)[0]
    assert "padded" in source and "padded" not in tie_band(gpu, family, pow2)[1]
    result = search(padded, gpu)
    assert result.tie_band_pct >= (hi - lo) / 2.0
