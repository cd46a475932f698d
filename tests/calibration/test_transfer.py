"""Transferring the calibrated H100 profile to GPUs we have not measured: the rules, the physics,
the resolver's defaults and the profile file."""

import dataclasses
import json

import pytest

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.strategies import all_families
from attnsim.simulator.hardware import PRESETS, CostParams
from attnsim.simulator.terms import SERVING_FIELDS
from attnsim.strategies import get, predictable

STRATEGIES = [n for n in predictable() if not get(n).mla_only]  # the workloads here are K/V-head layers
from attnsim.planner.search import search
from attnsim.predict import predict_one
from attnsim.simulator.profile_io import fit_mape_pct, load_profile, read_profile_document, shipped_profile_path
from attnsim.profiles import resolve_gpu, transfer_from, write_transferred_profile
from attnsim.simulator.transfer import EXPECTED_MARGIN_PCT, OTHER_ARCH, RULES, SAME_ARCH, transfer_profile
from attnsim.simulator.workload import DecodeWorkload

H100 = resolve_gpu("h100")  # the shipped calibrated profile
CLOCK_SCALED = [name for name, rule in RULES.items() if rule == "clock"]
CARRIED = [name for name, rule in RULES.items() if rule == "carried"]
KB = 1024


def _h100_fit_mape() -> float:
    fit = read_profile_document(shipped_profile_path("h100-sxm"))["fit"]
    rows = [f for f in fit.values() if isinstance(f, dict) and "mape_pct" in f]
    return sum(f["mape_pct"] * f["points"] for f in rows) / sum(f["points"] for f in rows)


def _transfer(source, target, name, source_mape_pct=None):
    """transfer_profile as the profiles resolver calls it (the registry's decode-fitted serving fields)."""
    return transfer_profile(source, target, name, source_mape_pct, strategies.serving_fields_fitted_on_decode())


H200 = _transfer(H100, PRESETS["h200"], "h100-sxm", _h100_fit_mape())[0]
A100 = _transfer(H100, PRESETS["a100-80gb"], "h100-sxm", _h100_fit_mape())[0]


def carried_fit(family: str, params: CostParams) -> CostParams:
    """What a transfer carries of an H100 family: its carried decode fit with the serving terms of its own
    (the H200's fit, carried to the H100: docs/serving.md) less those its decode fit moves."""
    if family not in H100.carried_cost:
        return params
    decode = strategies.serving_fields_fitted_on_decode().get(family, ())
    return dataclasses.replace(H100.carried_cost[family],
                               **{n: getattr(params, n) for n in SERVING_FIELDS if n not in decode})


def _time(strategy, workload, gpu) -> float:
    """A plan's predicted time; for `auto`, the fastest plan the planner found (its choice may be any
    simpler plan within the tie band, so only the fastest is bound to physics)."""
    if strategies.get(strategy).planned:
        return search(workload, gpu).fastest.time_us
    return predict_one(strategy, workload, gpu).total_us


def test_every_cost_parameter_has_a_rule():
    assert set(RULES) == {f.name for f in dataclasses.fields(CostParams)}
    assert set(RULES.values()) == {"carried", "clock"}


def test_h100_to_h100_is_the_identity():
    spec, report = _transfer(H100, PRESETS["h100-sxm"], "h100")
    assert spec.cost == H100.cost and spec.kernels == H100.kernels
    assert spec.hbm_read_gbps == pytest.approx(H100.hbm_read_gbps, rel=1e-12)
    assert spec.profile_source == "transferred" and report["case"] == SAME_ARCH
    w = DecodeWorkload.build(4, 32, 8, 128, 32768)
    for strategy in STRATEGIES:
        assert _time(strategy, w, spec) == pytest.approx(_time(strategy, w, H100), rel=1e-9)


def test_h100_to_h200_keeps_per_clock_costs_and_carries_the_efficiency():
    spec, report = _transfer(H100, PRESETS["h200"], "h100-sxm", _h100_fit_mape())
    assert spec.hbm_read_gbps == pytest.approx(4800 * 3091.1 / 3350)
    assert spec.cost == {f: carried_fit(f, p) for f, p in H100.cost.items()}  # same clock: factors 1
    assert any(getattr(spec.cost[f], n) != getattr(CostParams(), n) for f in spec.cost for n in SERVING_FIELDS)
    assert spec.kernels == H100.kernels  # same compiler target
    assert (spec.sm_count, spec.l2_bytes, spec.name) == (132, PRESETS["h200"].l2_bytes, "h200")
    assert spec.source == f"transferred from h100-sxm ({H100.source})"
    assert spec.expected_error_pct == round(H100.transfer_bands["mape_pct"], 1)  # the residuals of its bands
    assert report["gpu"]["hbm_read_gbps"] == {"rule": "scaled", "factor": pytest.approx(3091.1 / 3350),
                                              "basis": report["gpu"]["hbm_read_gbps"]["basis"]}


def test_h100_to_a100_scales_fixed_costs_by_clock_and_notes_the_architecture():
    spec, report = _transfer(H100, PRESETS["a100-80gb"], "h100-sxm", 3.0)
    factor = 1980 / 1410  # a cycle takes longer on the slower clock
    for family, params in H100.cost.items():
        moved, params = spec.cost[family], carried_fit(family, params)
        assert all(getattr(moved, n) == pytest.approx(getattr(params, n) * factor) for n in CLOCK_SCALED)
        assert all(getattr(moved, n) == getattr(params, n) for n in CARRIED)
    assert report["case"] == OTHER_ARCH
    assert spec.expected_error_pct == round(H100.transfer_bands["mape_pct"] + EXPECTED_MARGIN_PCT[OTHER_ARCH], 1)
    assert "compute capability 9.0, carried to 8.0" in report["kernels"]["note"]


def test_report_lists_every_fitted_parameter_of_every_family():
    _, report = _transfer(H100, PRESETS["h200"], "h100-sxm")
    assert set(report["cost"]) == set(H100.cost)
    for family in H100.cost:
        rules = report["cost"][family]
        assert set(all_families().get(family, ())) <= set(rules) == set(RULES)
        for name, entry in rules.items():
            assert entry["rule"] == ("scaled" if name in CLOCK_SCALED else "carried") and entry["factor"] == 1.0


def test_kernels_that_cannot_launch_on_the_target_are_dropped():
    big = {"kv_tile_tokens": 64, "num_warps": 4, "threads": 128, "regs_per_thread": 96, "smem_bytes": 200 * KB}
    source = dataclasses.replace(H100, kernels={**H100.kernels, "fa2/d256/float16": big})
    spec, report = _transfer(source, PRESETS["a100-80gb"], "test")  # A100 opts into 163 KB per CTA
    assert "fa2/d256/float16" not in spec.kernels and set(spec.kernels) == set(H100.kernels)
    assert report["kernels"]["dropped"]["fa2/d256/float16"].startswith("cannot_launch")


MEMORY_BOUND = [DecodeWorkload.build(b, 32, 8, 128, ctx) for b in (1, 2, 4, 8, 16, 32)
                for ctx in (16384, 65536, 262144, 524288) if b * ctx <= 4 * 1024 * 1024]  # KV <= 16 GB


@pytest.mark.parametrize("workload", MEMORY_BOUND, ids=lambda w: f"b{w.batch}-{w.context_label}")
def test_transferred_h200_is_never_slower_than_the_calibrated_h100(workload):
    carried = dataclasses.replace(H100, cost={f: H100.carried_cost.get(f, p) for f, p in H100.cost.items()})
    for strategy in STRATEGIES:  # the same costs (those a transfer carries) on more bandwidth
        assert _time(strategy, workload, H200) <= _time(strategy, workload, carried) * (1 + 1e-9), strategy


ANY_SHAPE = [DecodeWorkload.build(b, q, kv, d, ctx) for b, q, kv, d in ((1, 32, 8, 128), (8, 32, 32, 64),
                                                                         (32, 64, 8, 128))
             for ctx in (512, 4096, 65536)] + [DecodeWorkload.build(3, 32, 8, 128, [700, 20000, 90000])]


@pytest.mark.parametrize("workload", ANY_SHAPE, ids=lambda w: f"b{w.batch}-h{w.q_heads}/{w.kv_heads}-{w.context_label}")
@pytest.mark.parametrize("base", [H100, H200, A100], ids=["h100", "h200", "a100"])
def test_more_bandwidth_on_the_same_sms_is_never_slower(workload, base):
    for factor in (1.1, 1.5, 3.0):
        faster = dataclasses.replace(base, hbm_read_gbps=base.hbm_read_gbps * factor)
        for strategy in STRATEGIES:
            assert _time(strategy, workload, faster) <= _time(strategy, workload, base) * (1 + 1e-9), (strategy, factor)


def test_bad_targets_are_refused():
    with pytest.raises(InputError, match="must be a datasheet preset"):
        _transfer(H100, H100, "h100")
    with pytest.raises(InputError, match="no preset"):
        _transfer(dataclasses.replace(H100, name="mystery"), PRESETS["h200"], "x")


# ---- the resolver's defaults, an explicit source, the profile file ----

def test_presets_without_a_profile_resolve_to_transfers_and_none_to_the_datasheet():
    assert resolve_gpu("h200").profile_source == "calibrated"  # a measured H200 profile ships
    a100 = resolve_gpu("a100")
    assert a100.profile_source == "transferred" and a100.source.startswith("transferred from h100-sxm")
    assert a100.expected_error_pct is not None and a100.expected_error_pct > H200.expected_error_pct
    assert resolve_gpu("b200").source.startswith("transferred from h200")  # nearest bandwidth among sm90 profiles
    none = resolve_gpu("a100", "none")  # the preset's datasheet, first-principles costs for every family
    assert none.profile_source == "datasheet" and none.sm_count == PRESETS["a100-80gb"].sm_count
    assert set(none.cost) == set(strategies.kernel_traits()) and not none.uncalibrated
    assert H100.profile_source == "calibrated"  # derived from the shipped profile's source text
    assert resolve_gpu("h100", "none").profile_source == "datasheet"


def test_b200_transfers_as_another_architecture():
    spec = resolve_gpu("b200")
    assert (spec.compute_capability, spec.sm_count) == ((10, 0), 148)
    assert spec.profile_source == "transferred" and set(spec.kernels) == set(H100.kernels)
    h200_moved = resolve_gpu("h200").transfer_bands["mape_pct"]  # nearest bandwidth: the H200's measured transfer
    assert spec.expected_error_pct == pytest.approx(h200_moved + EXPECTED_MARGIN_PCT[OTHER_ARCH], abs=0.05)


def test_written_profile_round_trips_and_says_what_was_carried(tmp_path):
    path = tmp_path / "h200.json"
    spec = write_transferred_profile("h100", "h200", path)
    assert load_profile(path) == spec and resolve_gpu("h200", str(path)) == spec
    doc = json.loads(path.read_text())
    assert doc["transfer"]["source"]["profile"] == "h100-sxm" and doc["transfer"]["target"]["gpu"] == "h200"
    assert doc["transfer"]["cost"]["streamk"]["fixup_per_peer_us"]["rule"] == "scaled"
    assert doc["gpu"]["profile_source"] == "transferred" and doc["device"]["measured"] is False


def test_a_profile_file_is_a_source_too_and_transfers_compose(tmp_path):
    direct, _ = transfer_from("h100", "h200")
    from_file, _ = transfer_from(str(shipped_profile_path("h100-sxm")), "h200")
    assert from_file.cost == direct.cost and from_file.hbm_read_gbps == direct.hbm_read_gbps
    path = tmp_path / "h200.json"
    write_transferred_profile("h100", "h200", path)
    twice, _ = transfer_from(str(path), "h200")  # same efficiency, same cycles: nothing drifts
    assert twice.cost == direct.cost and twice.hbm_read_gbps == pytest.approx(direct.hbm_read_gbps)
    # a transfer of a transfer inherits the same measured bands, so the same expected error (one source)
    assert twice.error_bands == direct.error_bands and twice.expected_error_pct == direct.expected_error_pct


def test_a_source_without_a_calibrated_profile_is_refused():
    with pytest.raises(InputError, match="no calibrated profile ships for a100-80gb"):
        transfer_from("a100", "h200")
