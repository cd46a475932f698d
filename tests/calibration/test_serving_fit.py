"""The serving terms shipped in the H200 profile are what scripts/serving_fit.py fits on the cal-serving
sweep and scores on the validation sweeps: the same fields, the same held-out metrics, a term kept only
where its family's held-out rows of its sweep got better, the standard sweep untouched, bands from held-out
residuals; calibrate with serving points records which terms it fitted."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from attnsim.errors import InputError
from attnsim.profiles import resolve_gpu
from attnsim.simulator.hardware import DEFAULT_COST
from attnsim.simulator.profile_io import shipped_document
from attnsim.simulator.terms import MLA_REGIME, TERMS
from attnsim.validation import serving_fit as sf
from attnsim.validation import serving_transfer as st
from attnsim.validation.compare import predict_measurements
from attnsim.validation.fit import with_in_sample_bands

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "h200"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("serving_fit_script", ROOT / "scripts" / "serving_fit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def out(script):
    return script.run(RESULTS)  # ~20 s: four families' fits on cal-serving, scored on the sweeps


@pytest.fixture(scope="module")
def record():
    return shipped_document("h200")["fit"]["serving"]


def test_the_shipped_fields_are_the_fit_of_the_script(out, record):
    shipped = resolve_gpu("h200")
    for fit in out["fits"]:
        kept = {name for t in (*fit.terms, *fit.carried) for name in TERMS[t].fields}
        assert record["families"][fit.family]["terms"] == list(fit.terms)
        assert record["families"][fit.family]["carried"] == fit.carried
        for term in TERMS:
            for name in TERMS[term].fields:
                want = getattr(fit.params, name) if name in kept else getattr(DEFAULT_COST, name)
                assert getattr(shipped.cost_for(fit.family), name) == pytest.approx(want, rel=1e-5, abs=1e-6), \
                    (fit.family, name)
                status = shipped.serving_terms["terms"][fit.family][term]["status"]
                assert status == ("fitted" if term in fit.terms else "carried" if term in fit.carried else "default")


def test_carried_terms_are_the_donors_fit_and_hold_out_better(out):
    """Split-KV runs FlashDecoding's tile loop: a term its own rows did not fit is FlashDecoding's fields
    exactly, and only where the family's held-out rows of the term's sweeps improved on the default (tile
    math: always, its launches being priced at FlashDecoding's rates)."""
    fits = {f.family: f for f in out["fits"]}
    for fit in fits.values():
        donor = fits.get(sf.SAME_TILE_LOOP.get(fit.family, ""))
        for term, basis in fit.carried.items():
            assert donor is not None and term in donor.terms and term not in fit.terms
            for name in TERMS[term].fields:
                assert getattr(fit.params, name) == getattr(donor.params, name)
            if sf.BORROWED in basis:  # the donor's rates price the family's launches (Launch.math_family)
                continue
            without, carried = (float(x) for x in basis.rsplit("MAPE ", 1)[1].replace("%", "").split()[0:3:2])
            assert carried < without, basis


def test_a_carried_term_reads_so_in_a_rows_provenance():
    from attnsim.simulator.provenance import source_label

    label = source_label("calibrated", {"tile-math": "carried", "fp8-dequant": "fitted"})
    assert label == "calibrated; tile-math terms carried from a kernel with the same tile loop"


def test_every_family_the_cal_serving_plans_ran_is_fitted(out):
    frame = out["rows"].frame
    assert [f.family for f in out["fits"]] == list(dict.fromkeys(frame.loc[frame["fit"], "family"]))
    assert {"fa2", "flashdecoding", "streamk", "splitkv"} <= {f.family for f in out["fits"]}  # splitkv: auto's plans


def test_the_recorded_held_out_metrics_are_what_the_shipped_profile_scores(out, record):
    held = sf.mape_table(out["rows"], out["base"], resolve_gpu("h200"))
    assert held.to_dict("records") == record["held_out_mape_pct"] == out["held_out"].to_dict("records")


def test_a_term_ships_only_where_its_familys_sweep_held_out_better(out):
    rows = out["rows"]
    for fit in out["fits"]:  # judged, as fitted, with the fits of the families it borrows tile-math rates from
        before = sf.held_out_mape(rows, sf.fit_base(out["base"], out["fits"], fit.family, sf.lenders(rows)), fit.family)
        after = sf.held_out_mape(rows, out["fitted"], fit.family)
        for term in fit.terms:
            assert sf.judged(after, term) < sf.judged(before, term), (fit.family, term)
        assert set(fit.terms) | set(fit.dropped) - {sf.PER_WARP_KEY} == set(TERMS)


def test_the_per_warp_limit_ships_only_where_it_held_out_better_than_without(out):
    rows, base = out["rows"], out["base"]
    kept = [fit for fit in out["fits"] if sf.PER_WARP_KEY not in fit.dropped]  # (2026-12-07, packed waves: none)
    for fit in out["fits"]:
        own = [name for name in sf.PER_WARP if not any(name in TERMS[t].fields for t in fit.carried)]
        rates = [getattr(fit.params, name) for name in own]  # carried ones are the donor's (carry_terms)
        assert any(rates) == (fit in kept), fit.family
    lent = sf.lenders(rows)  # a family is fitted with the fits of those it borrows tile-math rates from
    for fit in kept:
        on = sf.fit_base(base, out["fits"], fit.family, lent)
        without = sf.fit_terms(rows, on, fit.family, frozen=sf.PER_WARP)
        assert sf.per_warp_score(rows, on, fit) < sf.per_warp_score(rows, on, without), fit.family
    for fit in out["fits"]:
        if fit not in kept:  # dropped: the fit with them held out no better than this one
            on = sf.fit_base(base, out["fits"], fit.family, lent)
            with_them = sf.fit_terms(rows, on, fit.family)
            assert sf.per_warp_score(rows, on, with_them) >= sf.per_warp_score(rows, on, fit), fit.family


def test_the_fit_sees_only_the_cal_sweeps_and_the_score_every_validation_feature_row(out):
    frame = out["rows"].frame
    fitted = {sweep: RESULTS / name for sweep, name in ((sf.CAL_SWEEP, "cal_serving.csv"),
                                                         (sf.CAL_FP8_SWEEP, "cal_fp8.csv"))
              if (RESULTS / name).exists()}  # cal-fp8 where it was measured
    assert set(frame.loc[frame["fit"], "sweep"]) == set(fitted) >= {sf.CAL_SWEEP}
    assert frame["fit"].sum() == sum(len(pd.read_csv(path)) for path in fitted.values())
    keys = sf.workload_keys(frame)
    assert not set(keys[frame["fit"]]) & set(keys[~frame["fit"]])
    for sweep in sf.SWEEPS:
        counts = frame.loc[frame["sweep"] == sweep, "requested"].value_counts()
        assert set(counts.index) == {"fa2", "flashdecoding", "streamk", "auto"} and (counts >= 40).all(), sweep


def test_a_fitted_workload_in_a_validation_sweep_is_refused(out):
    frame = out["rows"].frame
    leaked = pd.concat([frame, frame[frame["fit"]].head(1).assign(fit=False)], ignore_index=True)
    with pytest.raises(InputError, match="also in the validation sweeps"):
        sf.check_disjoint(leaked)


def test_the_standard_sweep_does_not_move(out, record):
    assert out["standard"]["before"] == out["standard"]["after"] == record["standard_sweep_mape_pct"]["after"]


def test_the_shipped_bands_are_held_out_residuals(out):
    h200 = resolve_gpu("h200").serving_terms["bands"]["regimes"]
    assert {r: v for r, v in h200.items() if r != MLA_REGIME} == sf.regime_bands(out["rows"], out["fitted"])
    assert MLA_REGIME in h200  # scripts/mla_fit.py's, from the mla sweep: the serving fit's rewrite keeps it


@pytest.fixture(scope="module")
def carried(script, out):
    return script.same_die(out, ROOT / "results" / "h100", ROOT / "attnsim" / "profiles" / "h100.json")


def test_the_h100_carries_the_h200_terms_where_its_own_rows_say_so(carried):
    """Same die, same kernels: the H100 profile holds the H200's fit of a term where the H100's measured
    serving rows predict better with it, the default elsewhere, and bands from those rows' residuals."""
    shipped = shipped_document("h100-sxm")["gpu"]
    assert shipped["serving_terms"]["terms"] == carried["table"]["terms"]
    regimes = {r: v for r, v in shipped["serving_terms"]["bands"]["regimes"].items() if r != MLA_REGIME}
    assert regimes == carried["table"]["bands"]["regimes"] and MLA_REGIME in shipped["serving_terms"]["bands"]["regimes"]
    h200 = resolve_gpu("h200")
    for family, terms in carried["table"]["terms"].items():
        for term, entry in terms.items():
            source = h200.cost_for(family) if entry["status"] == "transferred" else DEFAULT_COST
            for name in TERMS[term].fields:
                assert shipped["cost"][family][name] == pytest.approx(getattr(source, name), rel=1e-5, abs=1e-6)
    statuses = {e["status"] for terms in carried["table"]["terms"].values() for e in terms.values()}
    assert statuses == {"transferred", "default"}
    fp8 = carried["mape"][carried["mape"]["sweep"] == "fp8"]
    assert (fp8["after"] < fp8["before"]).all()  # the fp8 rows: the terms' largest effect


def test_a_source_fit_that_predicts_worse_is_not_carried(carried):
    """An fp8 conversion rate 100x too slow on the source is offered and refused: the term stays default."""
    rows, base = carried["rows"], sf.at_defaults(resolve_gpu("h100"), ["flashdecoding"])
    fd = rows.frame["family"] == "flashdecoding"
    few = sf.Rows(rows.frame[fd].reset_index(drop=True), rows.where(fd))
    wrong = dataclasses.replace(base.cost_for("flashdecoding"), dequant_elem_per_sm_clock=0.5, fp8_segment_fixed_us=0.0)
    fit = sf.FamilyFit("flashdecoding", ("fp8-dequant",), wrong, {}, 0)
    spec, table = st.carry_to_same_die(few, base, [fit], "a test")
    assert table["terms"]["flashdecoding"]["fp8-dequant"]["status"] == "default"
    assert spec.cost_for("flashdecoding").dequant_elem_per_sm_clock == DEFAULT_COST.dequant_elem_per_sm_clock


def test_calibrate_with_serving_points_records_the_terms_it_fitted():
    """`attnsim calibrate --add-points` fits the serving fields its points use: the profile says so,
    with in-sample bands for their regimes, and keeps its decode bands for the decode rows alone."""
    paged = pd.read_csv(RESULTS / "bench_paged.csv", dtype={"contexts": str, "options": str}).head(24)
    decode = paged[paged["page_size"] == 0]
    spec = with_in_sample_bands(resolve_gpu("h200"), paged)
    terms = spec.serving_terms["terms"]
    ran = set(predict_measurements(paged[paged["page_size"] > 0], resolve_gpu("h200"))["family"])
    assert set(terms) == ran and {"fa2", "flashdecoding", "streamk"} <= ran
    assert all(set(t) == {"paging"} and t["paging"]["status"] == "fitted" for t in terms.values())
    assert set(spec.serving_terms["bands"]["regimes"]) == {"paged"}
    assert spec.error_bands == with_in_sample_bands(resolve_gpu("h200"), decode).error_bands
    assert with_in_sample_bands(resolve_gpu("h200"), decode).serving_terms == {}


def test_resetting_to_defaults_touches_only_the_serving_fields():
    h200 = resolve_gpu("h200")
    neutral = sf.at_defaults(h200, ["fa2"])
    serving = {n for t in TERMS.values() for n in t.fields}
    changed = {f.name for f in dataclasses.fields(DEFAULT_COST)
               if getattr(neutral.cost_for("fa2"), f.name) != getattr(h200.cost_for("fa2"), f.name)}
    assert changed and changed <= serving


def test_cal_fp8_rows_are_fitted_beside_cal_serving_where_measured(tmp_path):
    """results/<gpu>/cal_fp8.csv (bench/sweep.py cal-fp8, long fp8 streams), where a device run wrote it, joins the
    fitted rows; its workloads are none of the held-out ones; without it the split is cal-serving's alone."""
    for name in ("cal_serving", *(f"bench_{s}" for s in sf.SWEEPS)):
        (tmp_path / f"{name}.csv").symlink_to(RESULTS / f"{name}.csv")
    spec = resolve_gpu("h200")
    assert "cal-fp8" not in sf.split_text(sf.load_rows(tmp_path, spec))
    cal = pd.read_csv(RESULTS / "cal_serving.csv", dtype=str, keep_default_na=False)
    fp8 = cal[(cal["kv_dtype"] == "float8_e4m3fn") & (cal["requested"] == "fa2") & (cal["ragged"] == "False")]
    assert len(fp8) >= 3
    fp8 = fp8.head(3)
    grid = [str(int(g) // int(b) * 4) for g, b in zip(fp8["grid"], fp8["batch"])]  # fa2: a CTA per (sequence, kv head)
    fp8.assign(batch="4", grid=grid).to_csv(tmp_path / "cal_fp8.csv", index=False)  # cal-fp8's batch; these times
    rows = sf.load_rows(tmp_path, spec)
    fitted = rows.frame[rows.frame["sweep"] == sf.CAL_FP8_SWEEP]
    assert len(fitted) == 3 and fitted["fit"].all()
    assert "and cal-fp8 (3 rows)" in sf.split_text(rows)


def test_the_cal_fp8_sweep_is_long_fp8_streams_none_held_out():
    from attnsim.bench.sweep import sweep
    points = sweep("cal-fp8", "bfloat16", 4.0)
    assert points and all(w.kv_dtype == "float8_e4m3fn" for w in points)
    assert {w.page_size for w in points} == {0, 16}
    held_out = set().union(*(sweep(s, "bfloat16", 4.0) for s in sf.SWEEPS))
    assert not set(points) & (held_out | set(sweep("cal-serving", "bfloat16", 4.0)))
    assert min(w.kv_bytes() / (w.batch * w.kv_heads) for w in points) >= 20000 * 128  # >= 2.5 MB per output
