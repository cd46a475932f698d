"""`attnsim calibrate --transfer-from` and `--quick` (offline, from committed H200 measurements)."""

import json
from pathlib import Path

import pytest

from attnsim.simulator.calibration import fit_bandwidth_curve
from attnsim.simulator.profile_io import load_profile, read_profile_document, shipped_profile_path
from attnsim.profiles import transfer_from
from cli_helpers import json_items, run_cli

H200_DATA = Path(__file__).parents[2] / "results" / "h200" / "calibration_data.json"


def _per_warp(rows):
    return fit_bandwidth_curve([r["num_ctas"] for r in rows], [r["num_warps"] for r in rows],
                               [r["read_gbps"] for r in rows])[0]


def test_transfer_from_writes_a_transferred_profile(tmp_path, capsys):
    out = tmp_path / "t.json"
    code, text, err = run_cli(["calibrate", "--transfer-from", "h100", "--gpu", "h200", "--out", str(out)], capsys)
    assert code == 0, err
    spec = load_profile(out)
    assert spec.profile_source == "transferred" and spec.source.startswith("transferred from h100-sxm")
    assert "expected error" in text
    code, text, _ = run_cli(["predict", "--calibration", str(out), "--format", "json"], capsys)
    assert code == 0 and {r["profile_source"] for r in json_items(text)} == {"transferred"}


def test_quick_calibration_applies_the_two_measurements_to_a_transfer(tmp_path, capsys):
    out = tmp_path / "q.json"
    code, _, err = run_cli(["calibrate", "--quick", "--gpu", "h200", "--from-data", str(H200_DATA),
                            "--out", str(out)], capsys)
    assert code == 0, err
    quick = load_profile(out)
    data = json.loads(H200_DATA.read_text())["calibration_data"]
    source = read_profile_document(shipped_profile_path("h100-sxm"))["calibration_data"]
    base, _ = transfer_from("h100", "h200")  # the kernel costs it starts from: never the H200's own fit
    assert quick.profile_source == "transferred" and "quick-calibrated" in quick.source
    assert quick.hbm_read_gbps == pytest.approx(max(r["read_gbps"] for r in data["bandwidth"]), abs=0.1)
    stream = _per_warp(data["bandwidth"]) / _per_warp(source["bandwidth"])
    launch = data["launch_overhead_us"] / source["launch_overhead_us"]
    for family, params in base.cost.items():
        got = quick.cost_for(family)
        assert got.cta_stream_gbps_per_warp == pytest.approx(params.cta_stream_gbps_per_warp * stream)
        assert got.launch_overhead_us == pytest.approx(params.launch_overhead_us * launch)
        assert got.cta_fixed_us == pytest.approx(params.cta_fixed_us)  # per-clock costs stay transferred


def test_quick_without_a_gpu_or_data_refuses_in_one_line(tmp_path, capsys):
    code, _, err = run_cli(["calibrate", "--quick", "--gpu", "h200", "--out", str(tmp_path / "q.json")], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "--from-data" in err
    assert not (tmp_path / "q.json").exists()
