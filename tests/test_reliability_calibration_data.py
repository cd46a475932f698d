"""Issue 22: calibration data and profiles that would give silently wrong numbers are refused by
field before any fit: data measured on another GPU than the profile's, bandwidth curves a fit cannot
read or no HBM delivers, profiles that claim fitted costs and hold none."""

import copy
import json
from pathlib import Path

import pytest

from reliability_helpers import assert_refused, write_inputs

ROOT = Path(__file__).parent.parent
H200_DATA = json.loads((ROOT / "results" / "h200" / "calibration_data.json").read_text())
H100_PROFILE = json.loads((ROOT / "attnsim" / "profiles" / "h100.json").read_text())


def _data(edit, doc=H200_DATA) -> str:
    """The measured H200 calibration data (or another document) with `edit` applied."""
    doc = copy.deepcopy(doc)
    edit(doc)
    return json.dumps(doc)


def _device(**fields):
    return lambda doc: doc["device"].update(fields)


def _bandwidth(rows):
    return lambda doc: doc["calibration_data"].update(bandwidth=rows(doc["calibration_data"]["bandwidth"]))


def _row0(**fields):
    return _bandwidth(lambda rows: [dict(rows[0], **fields)] + rows[1:])


def _calibration(**fields):
    return lambda doc: doc["calibration_data"].update(fields)


QUICK = {  # id: (edit of the H200 data, the error line of `calibrate --quick --gpu h200 --from-data`)
    "a100-data-as-h200": (_device(name="NVIDIA A100-SXM4-80GB", sm_count=108),
                          r"from-data.device.name: .*measured on 'NVIDIA A100-SXM4-80GB' \(a100-80gb\), .*for h200"),
    "h100-data-as-h200": (_device(name="NVIDIA H100 80GB HBM3"), r"from-data.device.name: .*\(h100-sxm\)"),
    "unnamed-gpu-of-other-sm-count": (_device(name="lab box 3", sm_count=108),
                                      r"from-data.device.sm_count: .*108 SMs, but h200 has 132"),
    "sm-count-as-text": (_device(sm_count="132"), r"from-data.device.sm_count: .*'132' SMs"),
    "device-name-a-number": (_device(name=200), r"from-data.device.name: must be a string"),
    "one-cta-count": (_bandwidth(lambda rows: [r for r in rows if r["num_ctas"] == 132]),
                      r"from-data.bandwidth.num_ctas: .*CTA counts 132; .*3 or more"),
    "never-saturates": (_bandwidth(lambda rows: [r for r in rows if r["num_ctas"] <= 66]),
                        r"from-data.bandwidth.num_ctas: .*to 132 or more"),
    "no-latency-bound-end": (_bandwidth(lambda rows: [r for r in rows if r["num_ctas"] >= 100]),
                             r"from-data.bandwidth.num_ctas: .*from 16 or fewer"),
    "faster-than-any-hbm": (_row0(read_gbps=9e5), r"from-data.bandwidth\[0\].read_gbps: .*900000 GB/s is above 1.2x"),
    "9e162-gbps": (_row0(read_gbps=9e162), r"from-data.bandwidth\[0\].read_gbps: 9e\+162 is above the limit"),
    "nan-gbps": (_row0(read_gbps=float("nan")), r"from-data.bandwidth\[0\].read_gbps: must be a finite number"),
    "infinite-gbps": (_row0(read_gbps=float("inf")), r"from-data.bandwidth\[0\].read_gbps: must be a finite number"),
    "negative-gbps": (_row0(read_gbps=-5.0), r"from-data.bandwidth\[0\].read_gbps: must be positive"),
    "fractional-ctas": (_row0(num_ctas=2.5), r"from-data.bandwidth\[0\].num_ctas: must be a whole number"),
    "zero-warps": (_row0(num_warps=0), r"from-data.bandwidth\[0\].num_warps: must be positive"),
    "boolean-warps": (_row0(num_warps=True), r"from-data.bandwidth\[0\].num_warps: must be a finite number"),
    "a-third-of-the-datasheet": (_bandwidth(lambda rows: [dict(r, read_gbps=r["read_gbps"] / 3) for r in rows]),
                                 r"from-data.bandwidth.read_gbps: .*saturates at 1499.77 GB/s, under 0.5x"),
    "curve-that-fits-no-physics": (_bandwidth(lambda rows: [dict(r, read_gbps=5000.0 if r["num_ctas"] == 1 else 1.0)
                                                            for r in rows]),
                                   r"from-data.bandwidth: .*GB/s per warp .*not a bandwidth sweep"),
    "zero-launch-overhead": (_calibration(launch_overhead_us=0), r"from-data.launch_overhead_us: must be positive"),
    "launch-overhead-of-a-second": (_calibration(launch_overhead_us=1e6), r"from-data.launch_overhead_us: .*1000"),
}


@pytest.mark.parametrize("case", sorted(QUICK))
def test_quick_calibration_refuses_data_that_gives_wrong_numbers(case, tmp_path, capsys):
    edit, field = QUICK[case]
    write_inputs(tmp_path, {"d.json": _data(edit)})
    assert_refused("calibrate --quick --gpu h200 --from-data {inp}/d.json --out {out}/q.json", field, tmp_path, capsys)


def test_a_full_refit_refuses_another_gpus_data(tmp_path, capsys):
    write_inputs(tmp_path, {"d.json": (ROOT / "results" / "h100" / "calibration_data.json").read_bytes()})
    assert_refused("calibrate --gpu h200 --from-data {inp}/d.json --out {out}/p.json",
                   r"from-data.device.name: .*'NVIDIA H100 80GB HBM3' \(h100-sxm\), but the profile is for h200",
                   tmp_path, capsys)


@pytest.mark.parametrize("column, value, field", [
    ("gpu", "NVIDIA A100-SXM4-80GB", r"from-data.points.gpu: d.json line 7 was measured on 'NVIDIA A100-SXM4-80GB'"),
    ("strategy", "flash-attn-3", r"from-data.points.strategy: d.json line 7 names strategy 'flash-attn-3'"),
], ids=["another-gpu", "unknown-strategy"])
def test_a_full_refit_refuses_points_it_would_leave_out_or_misfit(column, value, field, tmp_path, capsys):
    def edit(doc):
        doc["calibration_data"]["points"][5][column] = value
    write_inputs(tmp_path, {"d.json": _data(edit)})
    assert_refused("calibrate --gpu h200 --from-data {inp}/d.json --out {out}/p.json", field, tmp_path, capsys)


def test_added_points_of_another_gpu_are_refused_before_the_fit(tmp_path, capsys):
    rows = (ROOT / "results" / "h100" / "bench_quick_bf16.csv").read_text()
    write_inputs(tmp_path, {"d.json": json.dumps(H200_DATA), "h100.csv": rows})
    assert_refused("calibrate --gpu h200 --from-data {inp}/d.json --add-points {inp}/h100.csv --out {out}/p.json",
                   r"add-points.gpu: h100.csv line 2 was measured on 'NVIDIA H100 80GB HBM3'", tmp_path, capsys)


def test_quick_refuses_a_source_profile_without_its_own_curve(tmp_path, capsys):
    transferred = _data(lambda doc: doc.update(calibration_data={}, gpu={**doc["gpu"], "profile_source": "transferred"}),
                        H100_PROFILE)
    write_inputs(tmp_path, {"t.json": transferred, "d.json": json.dumps(H200_DATA)})
    assert_refused("calibrate --quick --gpu h200 --transfer-from {inp}/t.json --from-data {inp}/d.json "
                   "--out {out}/q.json", r"transfer-from: .*t.json holds no calibration data", tmp_path, capsys)


def test_quick_refuses_a_source_profile_with_a_garbage_curve(tmp_path, capsys):
    source = _data(_bandwidth(lambda rows: [r for r in rows if r["num_ctas"] == 1]), H100_PROFILE)
    write_inputs(tmp_path, {"s.json": source, "d.json": json.dumps(H200_DATA)})
    assert_refused("calibrate --quick --gpu h200 --transfer-from {inp}/s.json --from-data {inp}/d.json "
                   "--out {out}/q.json", r"transfer-from.bandwidth.num_ctas: .*CTA counts 1;", tmp_path, capsys)


def _claims(source: str) -> str:
    """A profile document whose gpu table claims `source` cost figures but holds no cost families."""
    return _data(lambda doc: doc.update(gpu={"base": "h200", "profile_source": source}), H100_PROFILE)


@pytest.mark.parametrize("command, files, field", [
    ("predict --calibration {inp}/p.json", {"p.json": _claims("calibrated")}, r"gpu.cost: .*says its cost figures "
                                                                              r"are calibrated, .*no fitted cost"),
    ("predict --gpu {inp}/p.json", {"p.json": _claims("transferred")}, r"gpu.cost: .*are transferred"),
    ("predict --gpu {inp}/g.json", {"g.json": json.dumps({"base": "h200", "source": "calibrated 2026-12-01 on X"})},
     r"gpu.cost: .*g.json says its cost figures are calibrated"),
    ("scenarios --check {inp}/s.toml", {"s.toml": 'models = ["llama-3.1-8b"]\ncontexts = ["1k"]\ngpus = ["p.json"]\n',
                                        "p.json": _claims("calibrated")}, r"gpus\[0\]: gpu.cost"),
    ("calibrate --transfer-from {inp}/p.json --gpu b200 --out {out}/t.json", {"p.json": _claims("calibrated")},
     r"gpu.cost: .*calibrated"),
], ids=["calibration", "gpu-document", "gpu-description", "scenario", "transfer-source"])
def test_a_profile_claiming_fitted_costs_without_any_is_refused(command, files, field, tmp_path, capsys):
    write_inputs(tmp_path, files)
    assert_refused(command, field, tmp_path, capsys)
