"""The floor model (simulator/floor.py): its fit recovers a known floor, the shipped profiles' fits reproduce the
floors their GPUs measured, predictions carry it as `bench` measures it, and a calibrated profile's plans never
beat it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attnsim.errors import InputError
from attnsim.predict import floor_us, predict_records
from attnsim.profiles import resolve_gpu
from attnsim.simulator import floor
from attnsim.simulator.hardware import from_name
from attnsim.simulator.workload import DecodeWorkload
from script_helpers import load_script

SIZES = np.geomspace(5e5, 8e9, 30)


def test_the_fit_recovers_a_known_floor():
    known = floor.FloorModel(4.8, 4500.0, 11.0, 6e7, "test")
    fitted = floor.fit(SIZES, [known.us(b) for b in SIZES], "test")
    for field in floor.FIELDS:
        assert getattr(fitted, field) == pytest.approx(getattr(known, field), rel=0.03), field
    with pytest.raises(InputError):
        floor.fit(SIZES[:3], [1.0, 2.0, 3.0], "too few")


@pytest.mark.parametrize("gpu, files", [
    ("h200", ["bench.csv", "bench_fp8.csv"]),
    ("h100", ["bench_now.csv", "bench_fp8.csv"]),
])
def test_the_shipped_floor_reproduces_the_floors_its_gpu_measured(gpu, files):
    measured = load_script("fit_floor").measured_floors([f"results/{gpu}/{f}" for f in files])
    model = floor.of_gpu(resolve_gpu(gpu))
    error = np.array([model.us(b) for b in measured.read_bytes]) / measured.floor_us - 1
    assert np.abs(error).mean() < 0.02 and np.abs(error).max() < 0.12
    assert model.basis.startswith("fitted on")


def test_a_prediction_carries_the_floor_of_its_bytes_and_how_far_above_it_it_is():
    w = DecodeWorkload.build(4, 32, 8, 128, 4096)
    gpu = resolve_gpu("h200")
    record = next(r for r in predict_records(w, gpu, ["streamk"]))
    expected = floor.of_gpu(gpu).us(w.kv_bytes() + w.io_bytes())
    assert record["floor_us"] == pytest.approx(expected, abs=1e-3)
    assert record["vs_floor"] == pytest.approx(record["time_us"] / expected, rel=1e-3)
    bytes_alone = w.kv_bytes() / (gpu.hbm_read_gbps * 1e3)  # the floor before 2026-12-07
    assert expected > bytes_alone + 4.0  # the call and the flush's write-back come on top of the bytes


@pytest.mark.parametrize("gpu", ["h100", "h200"])
def test_no_plan_of_a_calibrated_profile_beats_a_pure_read_of_its_bytes(gpu):
    spec = resolve_gpu(gpu)
    for batch, heads, context in ((1, (32, 8), 1024), (16, (8, 1), 65536), (64, (32, 8), 8192), (4, (64, 64), 262144)):
        w = DecodeWorkload.build(batch, *heads, 128, context)
        for record in predict_records(w, spec, ["fa2", "flashdecoding", "streamk", "splitkv", "auto", "torch-cudnn"]):
            assert record["time_us"] >= 0.98 * floor_us(w, spec), (record["strategy"], batch, heads, context)


def test_a_gpu_without_measured_floors_gets_the_datasheets_and_a_bad_table_is_refused():
    b200 = from_name("b200")
    model = floor.of_gpu(b200)
    assert model.basis.startswith("datasheet") and model.read_gbps == b200.hbm_read_gbps
    assert model.us(1e6) < model.us(1e8) < model.us(1e10)
    for bad in ({"launch_us": 5.0}, {**model.to_dict(), "read_gbps": -1.0}, {**model.to_dict(), "basis": 3}):
        with pytest.raises(InputError) as info:
            floor.check(bad, "test")
        assert info.value.field == "gpu.read_floor"
    assert floor.check({}, "test") == {}


def test_calibration_fits_the_floors_it_measured_and_older_data_keeps_the_datasheets():
    from attnsim.cli.calibrate import with_floor

    known = floor.FloorModel(5.0, 3200.0, 12.0, 6e7, "test")
    rows = [{"read_bytes": float(b), "floor_us": known.us(b)} for b in SIZES[::2]]
    h100 = from_name("h100")
    fitted = with_floor(h100, rows, "calibrated 2026-12-07 on an H100")
    assert fitted.read_floor["read_gbps"] == pytest.approx(3200.0, rel=0.03)
    assert "calibrated 2026-12-07" in fitted.read_floor["basis"]
    assert with_floor(h100, None, "old data") is h100
