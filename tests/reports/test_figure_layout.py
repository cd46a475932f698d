"""Figures as rendered: every text inside the canvas and nothing on top of a title or label
(layout_helpers), the serving settings in the titles, one colour per GPU in every figure, and the
ragged timeline's short title and shared time axis."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from attnsim.reports.occupancy import plot_occupancy
from attnsim.reports.speedup import plot_speedup
from attnsim.reports.style import GPU_COLORS, OTHER_GPU_COLORS, gpu_color, panels
from attnsim.reports.timeline import plot_timelines
from attnsim.reports.validation_plots import plot_validation
from attnsim.reports.whatif import plot_whatif
from attnsim.scenarios.loader import load_scenario
from attnsim.scenarios.run import occupancy_frame, scenario_predictions, timeline_results
from attnsim.simulator.hardware import from_name
from attnsim.predict import predict_one
from attnsim.simulator.workload import DecodeWorkload
from layout_helpers import assert_readable, layout_problems

SERVING_SETTINGS = "TP 8 · fp8 KV · 16-token pages"


@pytest.fixture(scope="module")
def serving():
    scenario = load_scenario("serving-70b-tp8")
    return {"scenario": scenario, "predictions": scenario_predictions(scenario),
            "whatif": scenario_predictions(scenario, scenario.whatif_gpus),
            "occupancy": occupancy_frame(scenario), "timelines": timeline_results(scenario)[1]}


@pytest.fixture(scope="module")
def many_mixes():
    """Eight ragged (model, mix) groups on two GPUs: the bars' labels must not collide."""
    scenario = load_scenario("ragged-mix")
    return scenario_predictions(scenario, [from_name("h100"), from_name("h200")])


def ragged_results(lengths, strategies=("fa2", "flashdecoding", "streamk")):
    gpu = from_name("h100")
    workload = DecodeWorkload.build(len(lengths), 32, 8, 128, list(lengths))
    return [predict_one(s, workload, gpu) for s in strategies]


def test_the_helper_finds_what_a_reader_would_see(predictions):
    fig = plot_speedup(predictions)
    assert layout_problems(fig) == []
    fig.axes[0].set_ylabel("a label far too long for one row of panels " * 4)  # runs off the canvas
    fig.axes[1].set_title(fig.axes[0].get_title() + " " * 60 + "x", loc="right")  # on top of the left title
    problems = layout_problems(fig)
    assert any(p.startswith("outside the canvas: 'a label far too long") for p in problems)
    assert any(p.startswith("overlap:") for p in problems)


@pytest.mark.parametrize("draw", [
    lambda f: plot_speedup(f["predictions"]), lambda f: plot_whatif(f["whatif"]),
    lambda f: plot_occupancy(f["occupancy"]), lambda f: plot_timelines(f["timelines"], model="llama-3.1-70b"),
], ids=["speedup", "whatif", "occupancy", "timeline"])
def test_serving_figures_are_readable_and_name_the_settings(serving, draw):
    fig = draw(serving)
    assert_readable(fig)
    titles = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
    assert any(SERVING_SETTINGS in t for t in titles), titles


@pytest.mark.parametrize("draw", [
    lambda f: plot_speedup(f["predictions"]), lambda f: plot_whatif(f["whatif"]),
    lambda f: plot_occupancy(f["occupancy"]), lambda f: plot_timelines(f["timelines"]),
    lambda f: plot_validation(f["measurements"]),
], ids=["speedup", "whatif", "occupancy", "timeline", "validation"])
def test_report_figures_are_readable_without_settings_to_name(predictions, whatif, occupancy, timelines,
                                                               measurements, draw):
    fig = draw(dict(predictions=predictions, whatif=whatif, occupancy=occupancy, timelines=timelines,
                    measurements=measurements))
    assert_readable(fig)
    assert not any(word in fig.get_suptitle() for word in ("TP", "KV", "pages"))  # defaults are not named


def test_the_five_row_whatif_and_many_ragged_groups_are_readable(many_mixes):
    default = load_scenario("default")
    five_rows = scenario_predictions(default, [from_name("h100"), from_name("l40s")])
    for frame in (five_rows, many_mixes):
        fig = plot_whatif(frame)
        assert_readable(fig)
    assert len(plot_whatif(five_rows).axes) == 10


def test_ragged_timeline_title_is_short_and_panels_share_the_time_axis():
    lengths = [2000 + (200000 - 2000) * k // 31 for k in range(32)]
    results = ragged_results(lengths)
    fig = plot_timelines(results, model="llama-3.1-8b")
    assert fig.get_suptitle() == "llama-3.1-8b · ragged, 32 sequences, 2000–200000 tokens on h100-sxm"
    first = fig.axes[0]
    assert all(ax.get_shared_x_axes().joined(first, ax) for ax in fig.axes)
    assert {ax.get_xlim() for ax in fig.axes} == {(0, max(r.total_us for r in results) * 1.01)}
    assert_readable(fig)


def lines_by_gpu(fig) -> dict[str, str]:
    return {line.get_label().split(" ")[0]: line.get_color() for line in fig.axes[0].get_lines()
            if not line.get_label().startswith("_")}


def test_one_colour_per_gpu_whatever_the_order_or_company(whatif, many_mixes):
    order = list(dict.fromkeys(whatif["gpu"]))
    swapped = pd.concat([whatif[whatif["gpu"] == g] for g in reversed(order)])
    assert lines_by_gpu(plot_whatif(whatif)) == lines_by_gpu(plot_whatif(swapped)) == {
        g: gpu_color(g) for g in order}
    bars = plot_whatif(many_mixes).axes[0]  # the ragged row's bars: the same colours as the lines
    assert [c.patches[0].get_facecolor() for c in bars.containers] == [to_rgba(gpu_color("h100-sxm")),
                                                                       to_rgba(gpu_color("h200"))]


def test_gpu_colour_table():
    assert gpu_color("h100") == gpu_color("H100-SXM") == GPU_COLORS["h100-sxm"]
    assert len(set(GPU_COLORS.values())) == len(GPU_COLORS)
    assert gpu_color("my-lab-gpu") == gpu_color("my-lab-gpu") in OTHER_GPU_COLORS  # stable for a profile's name
    assert not set(OTHER_GPU_COLORS) & set(GPU_COLORS.values())


def test_panels_split_by_a_setting_that_differs(serving):
    fp8 = serving["predictions"]
    both = pd.concat([fp8, fp8.assign(kv_dtype="bfloat16")])
    titles = [title for title, _ in panels(both)]
    assert titles == ["h200 · llama-3.1-70b · batch 16 · fp8 KV", "h200 · llama-3.1-70b · batch 16 · bf16 KV"]
    fig = plot_speedup(both)
    assert fig.get_suptitle().endswith("TP 8 · 16-token pages")  # shared settings: the figure's title
    assert_readable(fig)
