"""Per-term provenance: a paged / fp8 / verify prediction says which serving cost terms it uses were not
fitted on its GPU, and carries the band measured on the serving sweeps of its regime, never the decode
band; decode predictions are as before; transfers carry it all."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attnsim.predict import predict_records
from attnsim.profiles import resolve_gpu
from attnsim.simulator import bands
from attnsim.simulator.hardware import PRESETS
from attnsim.simulator.profile_io import shipped_document
from attnsim.simulator.provenance import PADDED_BAND_PCT, PADDED_LABEL, row_provenance, source_label, term_status
from attnsim.simulator.terms import terms_used
from attnsim.simulator.transfer import transfer_profile
from attnsim.simulator.workload import DecodeWorkload
from attnsim.validation.compare import predict_measurements
from attnsim.validation.measurements import load_measurements

H200, H100 = resolve_gpu("h200"), resolve_gpu("h100")
RESULTS = Path(__file__).parents[2] / "results"
DECODE = DecodeWorkload.build(8, 16, 2, 128, 32768, dtype="bfloat16")
PAGED = dataclasses.replace(DECODE, page_size=16)
FP8 = dataclasses.replace(DECODE, kv_dtype="fp8")
VERIFY = dataclasses.replace(DECODE, q_len=4)


def _record(workload, gpu, strategy):
    return predict_records(workload, gpu, [strategy])[0]


@pytest.mark.parametrize("strategy", ["fa2", "flashdecoding", "streamk", "splitkv", "auto"])
@pytest.mark.parametrize("gpu", [H200, H100])
def test_decode_rows_keep_the_profile_source_and_the_decode_band(gpu, strategy):
    r = _record(DECODE, gpu, strategy)
    assert (r["profile_source"], r["terms"], r["band_regime"]) == ("calibrated", None, "decode")
    family = row_provenance(gpu, "fa2", DECODE, DECODE.kv_bytes())  # any family: the decode lookup
    assert family.band_regime == "decode"
    lo, hi = bands.band(gpu.error_bands, _family(DECODE, gpu, strategy), DECODE.kv_bytes(), "calibrated")
    assert (r["err_lo_pct"], r["err_hi_pct"]) == (round(lo, 2), round(hi, 2))


def _family(workload, gpu, strategy):
    from attnsim.planner.choose import make_plan

    return make_plan(strategy, workload, gpu).schedule.attention.family


SERVING_CASES = [(PAGED, "paged"), (FP8, "fp8"), (VERIFY, "qlen"),
                 (dataclasses.replace(FP8, page_size=64, q_len=2), "paged+fp8+qlen")]


def _kept(family):
    """The terms scripts/serving_fit.py kept for `family` (its record in the H200 profile)."""
    return shipped_document("h200")["fit"]["serving"]["families"].get(family, {}).get("terms", [])


def _carried(family):
    """The terms scripts/serving_fit.py carried to `family` from the family whose tile loop it runs."""
    return shipped_document("h200")["fit"]["serving"]["families"].get(family, {}).get("carried", {})


@pytest.mark.parametrize("workload, regime", SERVING_CASES)
@pytest.mark.parametrize("strategy", ["fa2", "flashdecoding", "streamk", "splitkv"])
def test_serving_rows_name_their_terms_on_the_h200(workload, regime, strategy):
    """Each term the row uses is `fitted` exactly where the serving fit kept it for the plan's family."""
    r = _record(workload, H200, strategy)
    family = _family(workload, H200, strategy)
    kept, carried = _kept(family), _carried(family)
    want = {t: "fitted" if t in kept else "carried" if t in carried else "default" for t in terms_used(workload)}
    assert (r["profile_source"], r["terms"], r["band_regime"]) == (source_label("calibrated", want), want, regime)


@pytest.mark.parametrize("workload, regime", [(PAGED, "paged"), (FP8, "fp8"), (VERIFY, "qlen")])
@pytest.mark.parametrize("strategy", ["fa2", "flashdecoding", "streamk"])
def test_serving_bands_are_the_measured_ones_of_the_regime_not_the_decode_band(workload, regime, strategy):
    family = _family(workload, H200, strategy)
    rows = H200.serving_terms["bands"]["regimes"][regime][family]
    r = _record(workload, H200, strategy)
    assert [r["err_lo_pct"], r["err_hi_pct"]] == rows[bands.kv_bin(workload.kv_bytes())]
    decode = bands.band(H200.error_bands, family, workload.kv_bytes(), "calibrated")
    assert (r["err_lo_pct"], r["err_hi_pct"]) != (round(decode[0], 2), round(decode[1], 2))


def test_transferred_fp8_terms_say_so_and_carry_the_band_measured_on_this_gpu():
    """The H100 holds the H200's fp8 terms (same die: docs/serving.md): a row says they were transferred and
    carries the band the H100's own fp8 rows measured with them."""
    r = _record(FP8, H100, "fa2")
    assert r["profile_source"] == "calibrated; tile-math, fp8-dequant terms transferred"
    measured = H100.serving_terms["bands"]["regimes"]["fp8"]["fa2"][bands.kv_bin(FP8.kv_bytes())]
    assert [r["err_lo_pct"], r["err_hi_pct"]] == measured


def test_unfitted_fp8_terms_carry_the_error_measured_at_defaults():
    """Terms at their defaults are named so, and the row carries the band measured at the defaults (here: the
    H100's fa2 terms reset, with a band as wide as the defaults measured, -62%..+1%), not the decode band."""
    at_defaults = {t: {"status": "default", "basis": "a test"} for t in H100.serving_terms["terms"]["fa2"]}
    regimes = {r: dict(fams) for r, fams in H100.serving_terms["bands"]["regimes"].items()}
    regimes["fp8"]["fa2"] = [[-62.0, 1.0]] * len(regimes["fp8"]["fa2"])
    table = {"terms": {**H100.serving_terms["terms"], "fa2": at_defaults},
             "bands": {**H100.serving_terms["bands"], "regimes": regimes}}
    spec = dataclasses.replace(H100, serving_terms=table)
    r = _record(FP8, spec, "fa2")
    assert r["profile_source"] == "calibrated; tile-math, fp8-dequant terms at defaults"
    assert [r["err_lo_pct"], r["err_hi_pct"]] == [-62.0, 1.0]
    decode = _record(DECODE, spec, "fa2")
    assert decode["err_lo_pct"] > -15 and r["err_lo_pct"] < decode["err_lo_pct"] - 20
    assert r["time_hi_us"] > 1.5 * r["time_us"]  # the measured time may be 1.5x the prediction and more


def test_the_envelope_of_several_regimes_is_at_least_each():
    both = dataclasses.replace(FP8, page_size=16)
    r, paged, fp8 = (_record(w, H100, "streamk") for w in (both, PAGED, FP8))
    assert r["band_regime"] == "paged+fp8"
    assert r["err_lo_pct"] <= min(paged["err_lo_pct"], fp8["err_lo_pct"])
    assert r["err_hi_pct"] >= max(paged["err_hi_pct"], fp8["err_hi_pct"])


def test_a_family_the_sweeps_did_not_run_takes_the_widest_measured_band():
    """A family missing from the measured bands (here split-KV's, removed) takes the widest band any
    measured family has."""
    regimes = {k: {f: v for f, v in fams.items() if f != "splitkv"}
               for k, fams in H200.serving_terms["bands"]["regimes"].items()}
    spec = dataclasses.replace(H200, serving_terms={**H200.serving_terms, "bands": {
        **H200.serving_terms["bands"], "regimes": regimes}})
    row = row_provenance(spec, "splitkv", FP8, FP8.kv_bytes())
    b = bands.kv_bin(FP8.kv_bytes())
    assert row.band_pct == (min(rows[b][0] for rows in regimes["fp8"].values()),
                            max(rows[b][1] for rows in regimes["fp8"].values()))


def test_without_measured_serving_bands_a_serving_row_gets_the_datasheet_band():
    bare = dataclasses.replace(H200, serving_terms={})
    row = row_provenance(bare, "fa2", PAGED, PAGED.kv_bytes())
    assert row.band_pct == bands.DATASHEET_BAND_PCT
    assert row_provenance(bare, "fa2", DECODE, DECODE.kv_bytes()).band_pct != bands.DATASHEET_BAND_PCT


def test_an_unrecorded_term_is_read_by_its_values():
    """A profile written before the table: fields at their defaults were never fitted; others were."""
    bare = dataclasses.replace(H200, serving_terms={})
    for family in ("fa2", "flashdecoding", "streamk"):
        want = "fitted" if "fp8-dequant" in _kept(family) else "default"  # its fitted rate != the default 64
        assert term_status(bare, family, "fp8-dequant")["status"] == want
    assert term_status(resolve_gpu("h200", "none"), "fa2", "paging")["status"] == "default"  # datasheet


def test_datasheet_profiles_stay_datasheet_with_the_datasheet_band():
    r = _record(FP8, resolve_gpu("h200", "none"), "streamk")
    assert r["profile_source"] == "datasheet"
    assert (r["err_lo_pct"], r["err_hi_pct"]) == bands.DATASHEET_BAND_PCT


def test_labels_name_only_what_differs_from_the_profile_kind():
    assert source_label("calibrated", {"paging": "fitted"}) == "calibrated"
    assert source_label("transferred", {"paging": "transferred", "fp8-dequant": "default"}) == \
        "transferred; fp8-dequant terms at defaults"
    assert source_label("calibrated", {"paging": "transferred", "tile-math": "default"}) == \
        "calibrated; tile-math terms at defaults; paging terms transferred"
    assert source_label("datasheet", {"paging": "default"}) == "datasheet"


def test_transfer_carries_the_provenance_and_widens_bands_for_another_architecture():
    b200, _ = transfer_profile(H200, PRESETS["b200"], "h200")
    assert term_status(b200, "fa2", "fp8-dequant")["status"] == "transferred"
    assert term_status(b200, "fa2", "paging")["status"] == "default"  # the H200's fit left it there
    assert "h200" in term_status(b200, "fa2", "fp8-dequant")["basis"]
    assert _record(FP8, b200, "streamk")["profile_source"] == "transferred"  # every term it uses carried
    assert _record(PAGED, b200, "fa2")["profile_source"] == "transferred; paging terms at defaults"
    wide, same = b200.serving_terms["bands"]["regimes"], H200.serving_terms["bands"]["regimes"]
    assert wide["fp8"]["fa2"][0] == [same["fp8"]["fa2"][0][0] - bands.OTHER_ARCH_MARGIN_PCT,
                                    same["fp8"]["fa2"][0][1] + bands.OTHER_ARCH_MARGIN_PCT]
    h100, _ = transfer_profile(H200, PRESETS["h100-sxm"], "h200")  # same compute capability: carried as is
    assert h100.serving_terms["bands"]["regimes"] == same


def test_the_resolver_carries_it_to_presets_without_a_profile():
    b200 = resolve_gpu("b200")  # transferred from the H200
    assert b200.profile_source == "transferred"
    kept = _kept("fa2")
    assert _record(FP8, b200, "fa2")["terms"] == {t: "transferred" if t in kept else "default" for t in terms_used(FP8)}
    a100 = resolve_gpu("a100")  # from the H100: nothing fitted there
    assert _record(PAGED, a100, "fa2")["profile_source"] == "transferred; paging terms at defaults"


@pytest.mark.parametrize("gpu", [H200, H100])
def test_a_padded_head_dim_says_it_was_not_calibrated_and_widens_its_band(gpu):
    padded, pow2 = DecodeWorkload.build(8, 32, 8, 96, 8192), DecodeWorkload.build(8, 32, 8, 128, 8192)
    row, base = (row_provenance(gpu, "streamk", w, w.kv_bytes()) for w in (padded, pow2))
    assert row.profile_source == f"{base.profile_source}; {PADDED_LABEL}"
    assert row.band_regime == "decode+padded" and base.band_regime == "decode"
    assert row.band_pct[0] <= min(base.band_pct[0], PADDED_BAND_PCT[0])
    assert row.band_pct[1] >= max(base.band_pct[1], PADDED_BAND_PCT[1])
    fp8 = row_provenance(gpu, "streamk", dataclasses.replace(padded, kv_dtype="fp8"), padded.kv_bytes())
    assert fp8.band_regime == "fp8+padded" and fp8.terms  # its serving terms are still named


def test_the_padded_band_is_the_h100_padded_sweeps_residuals_under_todays_model():
    """PADDED_BAND_PCT, recomputed: the 5th-95th percentile of predicted / measured - 1 over every padded row of
    the H100's padded sweeps (a model change that moves them must move the band)."""
    frames = [load_measurements(RESULTS / "h100" / name) for name in ("head_dim_pad.csv", "pad_tiles.csv")]
    rows = predict_measurements(pd.concat(frames, ignore_index=True), H100)
    errors = rows.loc[rows["head_dim"].isin([96, 160, 192, 224]), "pct_error"]
    assert len(errors) == 124
    assert np.percentile(errors, [5, 95]) == pytest.approx(PADDED_BAND_PCT, abs=0.5)
