"""Profiles: round trip, the shipped H100 profile, refusal of corrupt and stale files."""

import dataclasses
import json

import pytest

from attnsim.errors import InputError
from attnsim.simulator.hardware import CostParams, from_name
from attnsim.simulator.profile_io import MODEL_VERSION, load_profile, save_profile
from attnsim.profiles import resolve_gpu

KERNEL = {"threads": 256, "regs_per_thread": 64, "smem_bytes": 33792}
STREAMK_D128 = "lean_decode/d128/float16/m16/w8/s3/n64"  # attnsim.plans.resources.Variant key of stream-K's default


def _spec():
    cost = {"streamk": CostParams(cta_stream_gbps_per_warp=7.25, cta_fixed_us=2.0, hbm_scale=0.97),
            "fa2": CostParams(launch_overhead_us=3.3)}
    return dataclasses.replace(from_name("h100"), hbm_read_gbps=3071.5, source="calibrated test",
                               cost=cost, kernels={STREAMK_D128: KERNEL})


def test_round_trip_keeps_every_field(tmp_path):
    spec = _spec()
    path = tmp_path / "p.json"
    save_profile(path, spec, {"name": "NVIDIA H100"}, {"fa2": {"mape_pct": 1.0}}, {"points": []}, "2026-11-25")
    loaded = load_profile(path)
    assert loaded == spec
    assert loaded.cost == spec.cost and loaded.kernels == spec.kernels
    assert not list(tmp_path.glob(".p.json*")), "atomic write left its temporary file"


def test_calibration_option_selects_a_profile_and_none_the_datasheet(tmp_path):
    path = tmp_path / "p.json"
    save_profile(path, _spec(), {}, {}, {}, "2026-11-25")
    assert resolve_gpu("h100", str(path)).hbm_read_gbps == 3071.5
    none = resolve_gpu("h100", "none")
    assert none.profile_source == "datasheet" and none.source.startswith("datasheet (h100-sxm; first-principles")
    assert resolve_gpu("a100").profile_source == "transferred"  # no measured profile ships for it


def test_kernel_config_of_a_profile_drives_the_plan(tmp_path):
    from attnsim.predict import predict_records
    from attnsim.simulator.workload import DecodeWorkload

    w = DecodeWorkload.build(1, 32, 8, 128, 65536)
    rec = predict_records(w, _spec(), ["streamk"])[0]
    # 256 threads x 64 regs x 33 KB smem -> 4 CTAs/SM by registers (6 by shared memory): 528 slots.
    assert rec["grid"] == 132 * 4


@pytest.mark.parametrize("text, reason", [
    ("{not json", "not valid JSON"),
    (json.dumps({"format": "something-else"}), "not an attnsim profile"),
    (json.dumps({"format": "attnsim-profile", "version": 0, "model": MODEL_VERSION, "gpu": {}}), "stale"),
    (json.dumps({"format": "attnsim-profile", "version": 1, "model": "old-model", "gpu": {}}), "stale"),
    (json.dumps({"format": "attnsim-profile", "version": 1, "model": MODEL_VERSION,
                 "gpu": {"base": "h100", "hbm_read_gbps": -3}}), "positive number"),
])
def test_corrupt_or_stale_profiles_are_refused(tmp_path, text, reason):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=reason):
        load_profile(path)
