"""Running scenarios: the frames reports are built from, and measurements predicted per GPU."""

import pandas as pd
import pytest

from attnsim.errors import InputError
from attnsim.validation.measured import gpu_for, measured_frame, total_tokens
from attnsim.scenarios.run import occupancy_frame, scenario_predictions, run_scenario, timeline_results
from attnsim.simulator.hardware import from_name
from scenario_helpers import DATA, parse

SMALL = '''models = ["llama-3.1-8b", "gemma-2-9b"]
batches = [1, 4]
contexts = ["1k", "16k"]
gpus = ["h100", "l40s"]
[[ragged]]
name = "mix"
batch = 3
seed = 5
'''


@pytest.fixture(scope="module")
def scenario():
    return parse(SMALL)


def test_scenario_predictions_has_one_row_per_gpu_case_and_strategy(scenario):
    frame = scenario_predictions(scenario)
    cases = 2 * (2 * 2 + 1)
    assert len(frame) == 2 * cases * 3
    assert {"model", "mix", "total_tokens", "gpu_source", "time_us", "floor_us"} <= set(frame.columns)
    uniform = frame[frame["mix"] == "uniform"]
    assert (uniform["total_tokens"] == uniform["batch"] * pd.to_numeric(uniform["context"])).all()
    assert (frame["time_us"] >= frame["floor_us"]).all()  # nothing beats reading the KV cache once


def test_progress_sees_every_job(scenario):
    seen = []

    def progress(jobs, label):
        seen.append((len(jobs), label))
        return jobs

    scenario_predictions(scenario, progress=progress)
    assert seen == [(2 * 10, "modelling scenario on h100-sxm, l40s")]  # 2 GPUs x 10 cases


def test_occupancy_frame_covers_every_launch_and_head_dim(scenario):
    frame = occupancy_frame(scenario)
    assert set(frame["head_dim"]) == {128, 256}
    launches = {"fa2/attention", "flashdecoding/attention", "flashdecoding/combine", "streamk/attention"}
    assert launches <= set(frame["kernel"])
    assert (frame["blocks_per_sm"] >= 1).all()
    assert (frame["resident_ctas"] == frame["blocks_per_sm"] * frame["gpu"].map({"h100-sxm": 132, "l40s": 142})).all()


def test_timeline_shows_the_first_ragged_mix_under_each_strategy(scenario):
    case, results = timeline_results(scenario)
    assert case.mix == "mix" and case.workload.batch == 3
    assert [r.schedule.strategy for r in results] == list(scenario.strategies)


def test_measurements_of_both_sdpa_backends_are_predicted():
    frame = measured_frame(DATA / "sdpa_small.csv", from_name("h100"))
    assert set(frame["strategy"]) == {"torch-flash", "torch-cudnn"}
    assert (frame["predicted_us"] > 0).all()
    expected = 100 * (frame["predicted_us"] - frame["time_us"]) / frame["time_us"]
    assert frame["pct_error"].tolist() == pytest.approx(expected.tolist())


def test_a_validation_csv_keeps_its_own_predictions(tmp_path):
    workloads = pd.read_csv(DATA / "sdpa_small.csv").drop_duplicates("context")  # one row per point
    rows = workloads.head(3).assign(strategy="fa2", predicted_us=[10.0, 20.0, 30.0])
    rows.to_csv(tmp_path / "v.csv", index=False)
    frame = measured_frame(tmp_path / "v.csv")
    assert frame["predicted_us"].tolist() == [10.0, 20.0, 30.0]


def test_gpu_column_resolution():
    h200 = from_name("h200")
    assert gpu_for("NVIDIA H100 80GB HBM3").name == "h100-sxm"
    assert gpu_for("H100-SXM-80GB", override=h200) is h200
    assert gpu_for("h200", preferred=[h200]) is h200
    with pytest.raises(InputError, match="pass --gpu"):
        gpu_for("Radeon 7900")


def test_total_tokens_of_uniform_and_ragged_labels():
    assert total_tokens("4096", 8) == 32768
    assert total_tokens("1000;50000;3000", 3) == 54000


def test_run_scenario_with_measurements_fills_every_section(scenario):
    results = run_scenario(scenario, str(DATA / "sdpa_small.csv"))
    assert results.whatif is not None and set(results.whatif["gpu"]) == {"h100-sxm", "h200", "a100-80gb", "l40s"}
    assert results.measurements is not None and len(results.measurements) > 0
    assert len(results.timelines) == 3


def test_a_command_lines_workloads_make_a_scenario_with_their_settings():
    from attnsim.scenarios.models import from_name as model
    from attnsim.scenarios.scenario import workload_scenario

    shape = model("llama-3.1-70b").sharded(8)
    uniform = [shape.workload(16, c, "bfloat16", 1, 16, "fp8") for c in (8192, 65536)]
    gpus = [from_name("h100"), from_name("b200")]
    chosen = workload_scenario(uniform, gpus, ("streamk",), "llama-3.1-70b")
    assert [c.workload for c in chosen.cases()] == uniform  # tp, layers, pages and KV dtype carried through
    frame = scenario_predictions(chosen, gpus)
    assert list(frame["gpu"]) == ["h100-sxm"] * 2 + ["b200"] * 2 and set(frame["model"]) == {"llama-3.1-70b"}
    ragged = [shape.workload(3, [1000, 9000, 300], "bfloat16")]
    (case,) = workload_scenario(ragged, gpus, ("streamk",)).cases()
    assert case.workload == ragged[0] and case.shape.name == "q8/kv1/d128"
