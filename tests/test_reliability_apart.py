"""Issue 22: an output never lands on an input. Every command with inputs and outputs refuses an
output path that is, holds (a folder replaced whole) or resolves to an input file — the same path,
another spelling ('..', a relative path), a symlink, a hard link — before any work: exit 2, one line
naming the output option, inputs byte for byte as they were, nothing written (pathcheck.check_apart)."""

import os
import shutil
from pathlib import Path

import pytest

from cli_helpers import run_cli
from reliability_helpers import DATA, assert_refused, write_inputs

from attnsim.reports.report import REPORT_MARK

ROOT = Path(__file__).parent.parent
SHIPPED = ROOT / "attnsim" / "profiles"
MEASURED = "gpu,strategy,batch,q_heads,kv_heads,head_dim,context,dtype,time_us\n" \
           "NVIDIA H100 80GB HBM3,fa2,1,32,8,128,4096,float16,25.0\n"
PREDICTED = "gpu,strategy,batch,q_heads,kv_heads,head_dim,context,time_us,speedup_vs_fa2,floor_us\n" \
            "h100,fa2,1,32,8,128,4096,20,1,2\n"
EARLIER_REPORT = f"<html><p>written 2026-12-04 UTC by attnsim</p></html>"  # replace_refusal's mark
assert REPORT_MARK in EARLIER_REPORT


def _inputs(tmp_path: Path) -> None:
    """{inp}: measurements, a calibrated profile, calibration data, a GPU description, a model config,
    a scenario naming both, predictions, and an earlier report holding measurements."""
    write_inputs(tmp_path, {
        "m.csv": MEASURED, "validation.csv": MEASURED, "pred.csv": PREDICTED, "g.json": '{"base": "h100"}',
        "p.json": (SHIPPED / "h100.json").read_bytes(),
        "d.json": (ROOT / "results" / "h200" / "calibration_data.json").read_bytes(),
        "cfg.json": (DATA / "llama-3.1-70b-config.json").read_bytes(),
        "s.toml": 'models = ["cfg.json"]\ncontexts = ["1k"]\ngpus = ["g.json"]\nwhatif_gpus = []\n',
        "sub/keep.txt": "a folder to climb out of", "r/index.html": EARLIER_REPORT, "r/m.csv": MEASURED,
    })


def _symlink(name: str, target: str):
    return lambda tmp: (tmp / "out" / name).symlink_to(tmp / "in" / target)


def _hardlink(name: str, target: str):
    def make(tmp):
        (tmp / "out" / name).parent.mkdir(parents=True, exist_ok=True)
        os.link(tmp / "in" / target, tmp / "out" / name)
    return make


def _nothing(tmp):
    return None


OVERLAPS = {  # id: (command, setup of {out}, the error line)
    "validate-out-dir-holds-measurements": (
        "validate --measurements {inp}/validation.csv --out-dir {inp}", _nothing,
        r"out-dir: .*in/validation.csv is the input .*validation.csv \(--measurements\)"),
    "validate-out-dir-spelled-with-dotdot": (
        "validate --measurements {inp}/validation.csv --out-dir {inp}/sub/..", _nothing,
        r"out-dir: .*sub/../validation.csv is the input"),
    "validate-out-dir-a-symlink-to-the-inputs": (
        "validate --measurements {inp}/validation.csv --out-dir {out}/link", _symlink("link", "."),
        r"out-dir: .*link/validation.csv is the input"),
    "validate-metrics-hard-link-of-calibration": (
        "validate --measurements {inp}/m.csv --calibration {inp}/p.json --out-dir {out}/v",
        _hardlink("v/validation_metrics.json", "p.json"), r"out-dir: .*validation_metrics.json .*\(--calibration\)"),
    "validate-gpu-run-bench-file-onto-profile": (
        "validate --calibration {inp}/p.json --out-dir {out}/v",
        lambda tmp: ((tmp / "out" / "v").mkdir(), _symlink("v/validation_measurements.csv", "p.json")(tmp)),
        r"out-dir: .*validation_measurements.csv is the input .*p.json \(--calibration\)"),
    "report-out-holds-measurements": (
        "report --scenario default --out {inp}/r --measurements {inp}/r/m.csv", _nothing,
        r"out: .*in/r holds the input .*r/m.csv \(--measurements\) and would be replaced whole"),
    "report-out-a-symlink-to-the-folder": (
        "report --scenario default --out {out}/rl --measurements {inp}/r/m.csv", _symlink("rl", "r"),
        r"out: .*rl holds the input"),
    "report-out-spelled-with-dotdot": (
        "report --scenario default --out {inp}/sub/../r --measurements {inp}/r/m.csv", _nothing,
        r"out: .*sub/../r holds the input"),
    "calibrate-transfer-onto-its-source": (
        "calibrate --transfer-from {inp}/p.json --gpu h200 --out {inp}/p.json", _nothing,
        r"out: .*p.json is the input .*p.json \(--transfer-from\)"),
    "calibrate-transfer-via-another-spelling": (
        "calibrate --transfer-from {inp}/p.json --gpu h200 --out {out}/../in/sub/../p.json", _nothing,
        r"out: .*is the input .*\(--transfer-from\)"),
    "calibrate-transfer-onto-a-hard-link": (
        "calibrate --transfer-from {inp}/p.json --gpu h200 --out {out}/h.json", _hardlink("h.json", "p.json"),
        r"out: .*h.json is the input .*\(--transfer-from\)"),
    "calibrate-refit-in-place": (
        "calibrate --from-data {inp}/p.json --out {inp}/p.json", _nothing, r"out: .*\(--from-data\)"),
    "calibrate-quick-onto-its-data": (
        "calibrate --quick --gpu h200 --from-data {inp}/d.json --out {inp}/d.json", _nothing,
        r"out: .*d.json is the input .*\(--from-data\)"),
    "calibrate-out-a-symlink-to-added-points": (
        "calibrate --from-data {inp}/p.json --add-points {inp}/m.csv --out {out}/a.json", _symlink("a.json", "m.csv"),
        r"out: .*a.json is the input .*m.csv \(--add-points\)"),
    "predict-out-onto-its-model-config": (
        "predict --model {inp}/cfg.json --out {inp}/cfg.json", _nothing, r"out: .*cfg.json \(--model\)"),
    "predict-out-a-symlink-to-the-gpu-file": (
        "predict --gpu {inp}/g.json --out {out}/p.csv", _symlink("p.csv", "g.json"),
        r"out: .*p.csv is the input .*g.json \(--gpu\)"),
    "predict-plot-onto-its-own-out": (
        "predict --calibration none --out {out}/p.csv --plot {out}/p.png",
        lambda tmp: (tmp / "out" / "p.png").symlink_to(tmp / "out" / "p.csv"), r"plot: .*p.png is also the out output"),
    "schedule-plot-a-symlink-to-calibration": (
        "schedule --calibration {inp}/p.json --plot {out}/g.png", _symlink("g.png", "p.json"),
        r"plot: .*g.png is the input .*\(--calibration\)"),
    "plot-speedup-onto-its-input": (
        "plot speedup --input {inp}/pred.csv --out {out}/s.svg", _symlink("s.svg", "pred.csv"),
        r"out: .*s.svg is the input .*pred.csv \(--input\)"),
    "plot-validation-hard-link-of-measurements": (
        "plot validation --measurements {inp}/m.csv --out {out}/v.png", _hardlink("v.png", "m.csv"),
        r"out: .*v.png is the input .*\(--measurements\)"),
    "plot-timeline-onto-the-model": (
        "plot timeline --model {inp}/cfg.json --tp 8 --out {out}/t.png", _symlink("t.png", "cfg.json"),
        r"out: .*t.png is the input .*cfg.json \(--model\)"),
    "plot-occupancy-onto-the-scenario": (
        "plot occupancy --scenario {inp}/s.toml --out {out}/o.png", _symlink("o.png", "s.toml"),
        r"out: .*o.png is the input .*s.toml \(--scenario\)"),
    "plot-whatif-onto-a-gpu-the-scenario-names": (
        "plot whatif --scenario {inp}/s.toml --gpu h100,h200 --out {out}/w.svg", _symlink("w.svg", "g.json"),
        r"out: .*w.svg is the input .*g.json \(--scenario\)"),
    "plot-speedup-onto-the-scenario-model": (
        "plot speedup --scenario {inp}/s.toml --out {out}/c.png", _symlink("c.png", "cfg.json"),
        r"out: .*c.png is the input .*cfg.json \(--scenario\)"),
    "bench-out-a-symlink-to-the-profile": (
        "bench --calibration {inp}/p.json --out {out}/b.csv", _symlink("b.csv", "p.json"),
        r"out: .*b.csv is the input .*\(--calibration\)"),
}


@pytest.mark.parametrize("case", sorted(OVERLAPS))
def test_an_output_onto_an_input_is_refused(case, tmp_path, capsys):
    command, setup, field = OVERLAPS[case]
    _inputs(tmp_path)
    (tmp_path / "out").mkdir()
    setup(tmp_path)
    assert_refused(command, field, tmp_path, capsys)


def test_the_same_file_by_relative_paths_is_refused(tmp_path, capsys, monkeypatch):
    _inputs(tmp_path)
    monkeypatch.chdir(tmp_path / "in")
    assert_refused("predict --model cfg.json --out ./sub/../cfg.json", r"out: ./sub/../cfg.json is the input cfg.json",
                   tmp_path, capsys)


@pytest.fixture
def shipped_guard():
    """The shipped profiles as they were, put back should a regression write one (then the test fails)."""
    before = {p: p.read_bytes() for p in SHIPPED.glob("*.json")}
    yield
    changed = [p for p, data in before.items() if p.read_bytes() != data]
    for path in changed:
        path.write_bytes(before[path])
    assert not changed, f"a shipped profile was overwritten: {changed}"


@pytest.mark.parametrize("command, field", [
    (f"predict --out {SHIPPED}/h100.json", r"out: .*h100.json is the input .*\(a shipped profile\)"),
    (f"calibrate --transfer-from h200 --gpu b200 --out {SHIPPED}/h200.json", r"out: .*h200.json .*\(--transfer-from\)"),
    (f"calibrate --quick --gpu b200 --from-data {{inp}}/d.json --out {SHIPPED}/h200.json",
     r"out: .*h200.json is the input .*\(the profile --quick transfers from\)"),
], ids=["predict", "transfer", "quick"])
def test_a_shipped_profile_is_an_input_too(command, field, tmp_path, capsys, shipped_guard):
    _inputs(tmp_path)
    assert_refused(command, field, tmp_path, capsys)


def test_outputs_beside_their_inputs_are_still_written(tmp_path, capsys):
    """The README's `validate --measurements D/bench.csv --out-dir D`: other files of one folder."""
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(DATA / "sdpa_small.csv", folder / "bench.csv")
    before = (folder / "bench.csv").read_bytes()
    code, _, err = run_cli(["validate", "--measurements", str(folder / "bench.csv"), "--out-dir", str(folder)], capsys)
    assert code == 0, err
    assert (folder / "bench.csv").read_bytes() == before and (folder / "validation.csv").is_file()


def test_an_earlier_report_is_replaced_when_no_input_lives_in_it(tmp_path, capsys):
    _inputs(tmp_path)
    report = tmp_path / "in" / "r"
    (report / "m.csv").unlink()  # the earlier report without the measurements: a report may replace it
    scenario = tmp_path / "tiny.toml"
    scenario.write_text('models = ["llama-3.2-1b"]\ncontexts = ["1k"]\nwhatif_gpus = []\n')
    code, _, err = run_cli(["report", "--scenario", str(scenario), "--out", str(report),
                            "--measurements", str(tmp_path / "in" / "m.csv")], capsys)
    assert code == 0, err
    assert REPORT_MARK in (report / "index.html").read_text() and (tmp_path / "in" / "m.csv").read_text() == MEASURED
