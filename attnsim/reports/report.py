"""The HTML report: `ScenarioResults` (frames + SimResults) -> index.html with figures and CSVs beside it.

The whole folder is written as a temporary folder next to the target and swapped in at the end
(fileio.atomic_dir): a reader, or a run killed half-way, sees the complete old report or the
complete new one, and no file of an older report stays beside a new index.html. Only an empty
folder or an earlier report is replaced (`replace_refusal`). Section builders return
(anchor, heading, html) or None.
"""

from __future__ import annotations

import datetime as dt
from importlib import metadata
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from attnsim.fileio import atomic_dir, write_text
from attnsim.reports import html as h
from attnsim.reports.modelled import gpu_table, modelled_section, serving_settings
from attnsim.reports.occupancy import occupancy_table, plot_occupancy
from attnsim.reports.speedup import plot_speedup
from attnsim.reports.style import workload_title
from attnsim.reports.summary import ragged_findings, uniform_findings, whatif_findings
from attnsim.reports.tables import speedup_table, step_table
from attnsim.reports.timeline import plot_timelines, timeline_table
from attnsim.validation.tables import error_table, ranking_summary, worst_points
from attnsim.reports.validation_plots import plot_validation
from attnsim.reports.whatif import plot_whatif, whatif_table


class _Writer:
    """Writes figures and CSVs into the report folder and remembers what it wrote."""

    def __init__(self, out_dir: Path, fig_ext: str):
        self.out_dir, self.fig_ext, self.written = out_dir, fig_ext, []

    def figure(self, plot, data, name: str, *args, **kwargs) -> str:
        fig = plot(data, self.out_dir / f"{name}{self.fig_ext}", *args, **kwargs)
        plt.close(fig)
        self.written.append(f"{name}{self.fig_ext}")
        return f"{name}{self.fig_ext}"

    def csv(self, frame: pd.DataFrame, name: str) -> str:
        write_text(self.out_dir / f"{name}.csv", frame.to_csv(index=False))
        self.written.append(f"{name}.csv")
        return f"{name}.csv"


REPORT_MARK = "UTC by attnsim"  # in every report's header line: how an earlier report is recognised
REPORT_SUFFIXES = (".html", ".png", ".svg", ".csv")  # what a report folder holds


def replace_refusal(folder: Path) -> str | None:
    """Why an existing folder may not be replaced by a report, or None when it may (empty, or a report)."""
    entries = list(folder.iterdir())
    if not entries:
        return None
    index = folder / "index.html"
    if not index.is_file() or REPORT_MARK not in index.read_text(errors="replace"):
        return "exists and is not an attnsim report (its index.html was not written by attnsim)"
    others = [e.name for e in entries if not e.is_file() or e.suffix.lower() not in REPORT_SUFFIXES]
    if others:
        return f"holds {others[0]!r}, which a report does not write"
    return None


def write_report(results, out_dir, fig_ext: str = ".png", command: str = "") -> Path:
    """Write the report folder (swapped in whole); returns the path of index.html."""
    with atomic_dir(out_dir) as tmp:
        _write_into(results, tmp, fig_ext, command)
    return Path(out_dir) / "index.html"


def _write_into(results, folder: Path, fig_ext: str, command: str) -> None:
    out = _Writer(folder, fig_ext)
    builders = (_summary, modelled_section, _gpus, _speedup, _ragged, _timeline, _occupancy, _whatif,
                _validation)
    sections = [s for s in (b(results, out) for b in builders) if s]
    sections.append(_files(out, command))
    scenario = results.scenario
    main_gpus = ", ".join(f"{h.esc(g.name)} {h.source_badge(g.source)}{_terms_badges(results.predictions, g.name)}"
                          for g in scenario.gpus)
    meta = (f"<b>{h.esc(serving_settings(scenario))}</b><br>"
            f"scenario <code>{h.esc(scenario.name)}</code> ({h.esc(scenario.source)}) · GPU profile {main_gpus} · "
            f"generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} {REPORT_MARK} {h.esc(_version())}")
    body = [h.section(anchor, heading, content) for anchor, heading, content in sections]
    write_text(folder / "index.html", h.page(scenario.title, meta, [(a, t) for a, t, _ in sections], body))


def _terms_badges(predictions: pd.DataFrame, gpu: str) -> str:
    """Badges for the serving terms the GPU's predictions use without having fitted them on it
    ("paging terms at defaults"): their rows carry the serving sweeps' wider bands."""
    if "profile_source" not in predictions:
        return ""
    sources = predictions.loc[predictions["gpu"] == gpu, "profile_source"]
    return "".join(" " + h.terms_badge(s) for s in dict.fromkeys(sources) if "; " in s)


def _version() -> str:
    try:
        return metadata.version("attnsim")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _summary(results, out):
    out.csv(results.predictions, "predictions")
    items = uniform_findings(results.predictions) + ragged_findings(results.predictions)
    if results.whatif is not None:
        items += whatif_findings(results.whatif)
    if results.measurements is not None:
        m = results.measurements
        items.append(f"Measured vs predicted: MAPE {m['abs_pct_error'].mean():.1f}% over {len(m)} measured "
                     f"points (see <a href=\"#validation\">validation</a>).")
    intro = h.para(f"Times are for one decode step of one attention layer on one GPU ({h.esc(serving_settings(results.scenario))}), "
                   "and through all layers per step where the model says how many; the floor is the KV cache read "
                   "once at the profile's HBM bandwidth. <code>auto</code> is the planner's choice among our "
                   "kernels' plans; torch-flash and torch-cudnn are PyTorch SDPA's backends as modelled.", "note")
    return "summary", "Summary", intro + h.bullet_list(items)


def _gpus(results, out):
    scenario = results.scenario
    text = h.para("<b>calibrated</b> profiles carry bandwidth and cost parameters fitted to measurements on that "
                  "GPU (<code>attnsim calibrate</code>); <b>transferred</b> ones carry a calibrated GPU's "
                  "parameters to another GPU's datasheet (per-clock costs scaled, shapes carried; expected "
                  "error stated); <b>datasheet</b> ones use vendor figures and rough default costs. Every "
                  "prediction's error band comes from measured residuals of its regime; a red badge beside a GPU "
                  "names serving cost terms (paging, tile math, fp8 dequantisation) its predictions use that were "
                  "never fitted on it: those rows carry the band measured on the serving sweeps, not the decode "
                  "band. Sources: "
                  + ", ".join(f"{h.esc(g.name)} {h.source_badge(g.source)}"
                              for g in _unique(scenario.gpus + scenario.whatif_gpus)), "note")
    return "gpus", "GPU profiles", text + h.table(gpu_table(scenario))


def _unique(gpus):
    return list({(g.name, g.source): g for g in gpus}.values())


def _speedup(results, out):
    frame = results.predictions
    uniform = frame[frame["mix"] == "uniform"]
    if uniform.empty:
        return None
    src = out.figure(plot_speedup, uniform, "speedup")
    caption = ("Left: predicted time per layer vs context (log-log), dashed: the floor; right-hand scale: ms per "
               "decode step through all the model's layers. Dotted: auto, the planner's choice (on top of the plan "
               "it picked); dash-dotted: PyTorch SDPA baselines, where they run the case. Right: speedup over "
               "fa2; dashed: the most any plan could gain (fa2 time / floor).")
    table = h.table(speedup_table(uniform), "Table: every uniform case", collapsed=True)
    steps = step_table(uniform)
    per_step = h.table(steps, "Attention per decode step, all layers (µs)") if steps is not None else ""
    return "speedup", "Speedup vs context length", h.figure(src, caption) + per_step + table


def _ragged(results, out):
    ragged = results.predictions[results.predictions["mix"] != "uniform"]
    if ragged.empty:
        return None
    text = h.para("Ragged batches: one context length per sequence, drawn by the mix's generator "
                  "(reproducible from its seed); the context column gives the number of sequences.", "note")
    steps = step_table(ragged)
    per_step = h.table(steps, "Attention per decode step, all layers (µs)") if steps is not None else ""
    return "ragged", "Ragged batches", text + h.table(speedup_table(ragged)) + per_step


def _timeline(results, out):
    case, sims = results.timeline_case, results.timelines
    what = workload_title(case.workload, case.shape.name + (f" · mix {case.mix}" if case.mix else ""))
    src = out.figure(plot_timelines, sims, "timeline", model=case.shape.name)
    caption = ("One row per SM, one lane per resident CTA slot; all panels on one time axis. Bars: CTAs "
               "streaming KV (colour: what they produce) then their fixed tail; dark red: a host's fix-up "
               "(waiting for partials and merging them); pink: idle slot time; hatched: launch overhead; "
               "dotted: start of a later wave.")
    return "timeline", "SM timeline", (h.para(f"Workload: {h.esc(what)}.") + h.figure(src, caption)
                                       + h.table(timeline_table(sims)))


def _occupancy(results, out):
    src = out.figure(plot_occupancy, results.occupancy, "occupancy")
    out.csv(results.occupancy, "occupancy")
    caption = ("CTAs per SM each CUDA limit allows (warps, registers, shared memory, the CTA cap) for every "
               "kernel configuration the strategies launch; the outlined bar binds.")
    return "occupancy", "Occupancy", h.figure(src, caption) + h.table(occupancy_table(results.occupancy))


def _whatif(results, out):
    if results.whatif is None:
        return None
    frame = results.whatif
    gpus = list(dict.fromkeys(frame["gpu"]))
    parts = [h.para(f"The same scenario on {h.esc(', '.join(gpus))}: for every case the fastest strategy on "
                    f"each GPU, and how much faster than on {h.esc(gpus[0])}.", "note"),
             h.figure(out.figure(plot_whatif, frame, "whatif"),
                      f"Left: fastest strategy's time per GPU (dashed: each GPU's floor; bars: ragged mixes). "
                      f"Right: speedup over {gpus[0]} (time on {gpus[0]} / time on each GPU).")]
    out.csv(frame, "whatif")
    parts.append(h.table(whatif_table(frame), "Table: fastest strategy per GPU", collapsed=True))
    return "whatif", "What-if: other GPUs", "".join(parts)


def _validation(results, out):
    frame = results.measurements
    if frame is None:
        return None
    rank = ranking_summary(frame)
    ranking = (f"The predicted fastest of fa2/flashdecoding/streamk is the measured fastest for "
               f"{rank['rank_accuracy']:.0%} of {rank['points']} workloads measured with all of them."
               if rank["points"] else "No workload was measured with several of our strategies, so no ranking check.")
    src = out.figure(plot_validation, frame, "validation")
    out.csv(frame, "validation")
    intro = h.para(f"{len(frame)} measured points from <code>{h.esc(results.measurements_path)}</code>; errors are "
                   f"(predicted − measured) / measured. {h.esc(ranking)}", "note")
    return "validation", "Predicted vs measured", (intro + h.table(error_table(frame), "Error by strategy")
                                                    + h.figure(src, "Left: predicted vs measured time. Right: signed "
                                                                    "error vs context length.")
                                                    + h.table(worst_points(frame), "Largest errors"))


def _files(out, command: str):
    links = [h.link(name, name) for name in out.written]
    text = h.para("Files next to this page: " + ", ".join(links) + ".")
    if command:
        text += h.para(f"Reproduce: <code>{h.esc(command)}</code>")
    return "files", "Data and reproduction", text
