"""The torch-cudnn model against the committed measurements (none of them used for fitting): the H200
standard sweep with the shipped H200 profile, and the H100 sweep through that profile transferred
(issue 12's acceptance: MAPE <= 6% and <= 8%). And cuDNN in a scenario's comparison."""

from pathlib import Path

from attnsim.profiles import resolve_gpu, transfer_from
from attnsim.validation.compare import error_metrics, predict_measurements
from attnsim.validation.measurements import load_measurements

NAME = "torch-cudnn"
RESULTS = Path(__file__).parents[2] / "results"


def _metrics(spec, gpu_dir: str) -> dict:
    rows = load_measurements(RESULTS / gpu_dir / "bench.csv")
    return error_metrics(predict_measurements(rows[rows["strategy"] == NAME], spec))[NAME]


def test_h200_sweep_with_the_calibrated_profile():
    m = _metrics(resolve_gpu("h200"), "h200")
    assert m["n"] == 437 and m["mape"] <= 6.0


def test_h100_sweep_through_the_transferred_h200_profile():
    spec, report = transfer_from("h200", "h100")
    assert {"torch-cudnn-d64", "torch-cudnn-d128", "torch-cudnn-combine"} <= set(report["cost"])
    m = _metrics(spec, "h100")
    assert m["n"] == 437 and m["mape"] <= 8.0


def test_a_scenario_compares_cudnn_with_our_kernels(tmp_path):
    from attnsim.reports.speedup import plot_speedup
    from attnsim.scenarios.loader import parse_scenario
    from attnsim.scenarios.run import run_scenario

    text = 'models = ["llama-3.1-8b"]\ncontexts = ["1k", "64k"]\ngpus = ["h200"]\nstrategies = ["streamk", "torch-cudnn"]\n'
    scenario = parse_scenario(text, "t.toml", Path("."))
    predictions = run_scenario(scenario).predictions
    assert set(predictions["strategy"]) >= {"streamk", NAME} and (predictions["time_us"] > 0).all()
    plot_speedup(predictions, tmp_path / "speedup.png")
    assert (tmp_path / "speedup.png").stat().st_size > 1000
