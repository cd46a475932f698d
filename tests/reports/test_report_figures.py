"""Each plot function: the axes, labels and marks a reader relies on, and a non-empty PNG/SVG file."""

import pytest

from attnsim.errors import InputError
from attnsim.schema import records_frame
from attnsim.reports.occupancy import kernel_configs, plot_occupancy
from attnsim.reports.speedup import FLOOR_LABEL, plot_speedup
from attnsim.reports.timeline import plot_timeline, plot_timelines, waves
from attnsim.reports.validation_plots import plot_validation
from attnsim.reports.whatif import plot_whatif
from attnsim.simulator.hardware import from_name
from attnsim.predict import predict_one, predict_records
from attnsim.simulator.workload import DecodeWorkload


def legend_texts(ax_or_legend) -> list[str]:
    legend = ax_or_legend.get_legend() if hasattr(ax_or_legend, "get_legend") else ax_or_legend
    return [t.get_text() for t in legend.get_texts()]


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_speedup_axes_lines_floor_and_file(predictions, tmp_path, suffix, magic):
    uniform = predictions[predictions["mix"] == "uniform"]
    out = tmp_path / f"s{suffix}"
    fig = plot_speedup(uniform, out)
    ax_time, ax_speedup = fig.axes
    assert ax_time.get_xscale() == "log" and ax_speedup.get_xscale() == "log"
    assert ax_time.get_xlabel().startswith("context length")
    assert ax_time.get_ylabel() == "time per layer (µs); shaded: error band"
    assert len(ax_time.collections) == 3, "one error band per strategy"
    assert ax_speedup.get_ylabel() == "speedup vs fa2 (×)"
    assert "llama-3.1-8b" in ax_time.get_title() and "batch 1" in ax_time.get_title()
    assert legend_texts(ax_time) == ["fa2", "flashdecoding", "streamk", FLOOR_LABEL]
    floor = next(line for line in ax_time.get_lines() if line.get_label() == FLOOR_LABEL)
    assert list(floor.get_ydata()) == sorted(uniform["floor_us"].unique())
    assert out.read_bytes().startswith(magic) and out.stat().st_size > 5000


def test_speedup_of_predict_records_without_model_column(tmp_path):
    gpu = from_name("h100")
    records = [r for c in (1024, 65536) for r in predict_records(DecodeWorkload.build(2, 16, 16, 64, c), gpu)]
    fig = plot_speedup(records_frame(records), tmp_path / "p.png")
    assert "q16/kv16/d64" in fig.axes[0].get_title()


def test_speedup_refuses_ragged_only_frames(predictions):
    with pytest.raises(InputError, match="uniform batches"):
        plot_speedup(predictions[predictions["mix"] != "uniform"])


def test_figure_suffix_decides_the_format_and_others_are_refused(predictions, tmp_path):
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        plot_speedup(predictions, tmp_path / "s.jpg")
    assert not (tmp_path / "s.jpg").exists()


def test_timelines_one_panel_per_strategy_with_idle_fixups_and_legend(timelines, tmp_path):
    fig = plot_timelines(timelines, tmp_path / "t.png", model="llama-3.1-8b")
    assert [ax.get_title(loc="left").split(":")[0] for ax in fig.axes] == ["fa2", "flashdecoding", "streamk"]
    for ax, result in zip(fig.axes, timelines):
        assert ax.get_ylabel() == "SM" and ax.get_xlabel() == "time (µs)"
        assert ax.get_ylim()[1] == pytest.approx(result.sm_count - 0.3)
        assert ax.collections  # the CTA bars
        assert "SMs idle" in ax.get_title(loc="left")
    labels = legend_texts(fig.legends[0])
    assert "idle SM slot" in labels and "launch overhead" in labels
    assert "fix-up: wait + merge" in labels  # stream-K hosts merge partials of a ragged batch
    assert "combine launch" in labels  # FlashDecoding's second launch
    assert (tmp_path / "t.png").stat().st_size > 5000


def test_timeline_marks_every_later_wave(tmp_path):
    gpu = from_name("h100")
    result = predict_one("fa2", DecodeWorkload.build(128, 32, 8, 128, 2048), gpu)  # 1024 CTAs, 396 slots
    fig = plot_timeline(result, tmp_path / "w.svg")
    (ax,) = fig.axes
    assert waves(result.launches[0]) == 3
    assert [t.get_text().strip() for t in ax.texts] == ["wave 2", "wave 3"]
    assert (tmp_path / "w.svg").read_text().lstrip().startswith("<?xml")


def test_occupancy_bars_outline_the_binding_limit(occupancy, tmp_path):
    fig = plot_occupancy(occupancy, tmp_path / "o.png")
    (ax,) = fig.axes
    configs = kernel_configs(occupancy)
    assert len(ax.get_yticklabels()) == len(configs)
    assert ax.get_xlabel().startswith("CTAs per SM allowed by each limit")
    outlined = [p for p in ax.patches if p.get_linewidth() > 1]
    assert len(outlined) == len(configs)  # exactly one binding limit per configuration
    notes = [t.get_text() for t in ax.texts if t.get_text().startswith("→")]
    assert any("CTAs/SM (shared memory)" in n for n in notes)
    assert legend_texts(fig.legends[0]) == ["warps", "registers", "shared memory", "blocks"]  # below: hides no note


def test_whatif_compares_every_gpu_and_the_ragged_mix(whatif, tmp_path):
    fig = plot_whatif(whatif, tmp_path / "w.png")
    assert len(fig.axes) == 4  # one (model, batch) row + the ragged row
    assert legend_texts(fig.axes[0]) == ["h100-sxm (calibrated)", "l40s (transferred)",  # every GPU says its source
                                         "shaded: error band", "dashed: floor (a pure read of the bytes)"]
    assert fig.axes[1].get_title().endswith("speedup over h100-sxm")
    assert fig.axes[2].get_title().startswith("ragged mixes")
    ratios = fig.axes[1].get_lines()[0].get_ydata()
    assert list(ratios) == pytest.approx([1.0] * len(ratios))  # the baseline against itself


def test_validation_scatter_and_error_panels(measurements, tmp_path):
    fig = plot_validation(measurements, tmp_path / "v.png")
    ax_scatter, ax_error = fig.axes
    assert ax_scatter.get_xscale() == ax_scatter.get_yscale() == "log"
    assert (ax_scatter.get_xlabel(), ax_scatter.get_ylabel()) == ("measured time (µs)", "predicted time (µs)")
    assert f"over {len(measurements)} points" in ax_scatter.get_title()
    assert ax_error.get_ylabel() == "prediction error (%)"
    assert (tmp_path / "v.png").stat().st_size > 5000
