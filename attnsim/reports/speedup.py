"""Speedup and time vs context length: one line per strategy, one row of panels per model/batch.

Input: the records of `predict_records` / `scenarios.run.predict_frame` as a DataFrame (columns
strategy, context, time_us, speedup_vs_fa2, floor_us, and gpu/model/batch to group by). Ragged rows
(context 'a;b;c') have no place on a context axis and are left out here; the tables show them.

`auto` (the planner's choice) is drawn dotted over the plan it chose, third-party baselines dash-
dotted; a model's rows get a right-hand axis in ms per decode step through all its layers.

The physical floor (floor_us) is a pure streaming read of the call's bytes under the bench's timer, as
`attnsim bench` measures it per row (modelled: simulator/floor.py). On the time panel it is a dashed line
under every strategy; on the speedup panel it becomes the largest speedup over FA2 any plan could reach:
fa2_us / floor_us.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator

from attnsim import csvfile, limits, strategies
from attnsim.errors import InputError
from attnsim.reports.style import (FLOOR_STYLE, common_settings, context_axis, figure_title, finish, new_grid, panels,
                                  strategy_color, uniform_rows)

FLOOR_LABEL = "floor: a pure read of the bytes"
# A predictions CSV (`attnsim predict --format csv`): the columns the figure reads, and their ranges.
PREDICTION_COLUMNS = ("gpu", "strategy", "batch", "q_heads", "kv_heads", "head_dim", "context", "time_us",
                      "speedup_vs_fa2", "floor_us")
INTEGER_RANGES = {"batch": limits.MAX_BATCH, "q_heads": limits.MAX_HEADS, "kv_heads": limits.MAX_HEADS,
                  "head_dim": 1024}
POSITIVE_COLUMNS = ("time_us", "speedup_vs_fa2", "floor_us")


def read_predictions(path, field: str = "input") -> pd.DataFrame:
    """A predictions CSV with every cell the figure reads checked (line and column named when not),
    and at most limits.MAX_SCENARIO_PANELS panels of (gpu, model or shape, batch)."""
    frame = csvfile.read_csv(path, field, limits.MAX_MEASUREMENT_ROWS, PREDICTION_COLUMNS)
    for column in ("gpu", "strategy"):
        csvfile.text_column(frame, column, field, path)
    csvfile.lengths_column(frame, "context", field, path)
    columns = {c: csvfile.integer_column(frame, c, field, path, 1, high) for c, high in INTEGER_RANGES.items()}
    columns.update({c: csvfile.number_column(frame, c, field, path, 1e-9, 1e12) for c in POSITIVE_COLUMNS})
    frame = frame.assign(**columns, context=frame["context"].astype(str))
    shape = ["model"] if "model" in frame.columns else ["q_heads", "kv_heads", "head_dim"]
    limits.check_max(len(frame.drop_duplicates(["gpu", "batch", *shape])), limits.MAX_SCENARIO_PANELS, field,
                     "figure panels (gpu x model x batch)")
    return frame


def plot_speedup(frame: pd.DataFrame, out_path=None):
    """Per (gpu, model, batch): left time (µs, log-log) with the floor; right speedup vs FA2. Returns the figure."""
    frame = uniform_rows(frame)
    if frame.empty:
        raise InputError("context", "speedup plots need uniform batches (a numeric context), found none")
    groups = panels(frame)
    fig, axes = new_grid(len(groups), 2)
    for (title, rows), (ax_t, ax_s) in zip(groups, axes):
        _draw_group(ax_t, ax_s, rows)
        ax_t.set_title(f"{title}: decode time", fontsize=10)
        ax_s.set_title(f"{title}: speedup vs FA2", fontsize=10)
    axes[0][0].legend(fontsize=8, loc="upper left")
    axes[0][1].legend(fontsize=8, loc="lower right")
    figure_title(fig, "Predicted decode attention, one layer on one GPU", common_settings(frame))
    return finish(fig, out_path)


def line_style(strategy: str) -> dict:
    """Ours solid; the planner's choice dotted and wider (it lies on the best plan it picked);
    third-party baselines dash-dotted."""
    entry = strategies.get(strategy) if strategy in strategies.REGISTRY else None
    label = f"{strategy} (planner)" if entry and entry.planned else strategy
    style = dict(marker="o", markersize=3.5, color=strategy_color(strategy), label=label)
    if entry and entry.planned:
        style.update(linestyle=":", linewidth=2.4, marker="")
    elif entry and entry.baseline:
        style.update(linestyle="-.", marker="s", markersize=3)
    return style


def step_axis(ax_t, rows: pd.DataFrame) -> None:
    """A right-hand axis in ms per decode step through all layers, when the rows are one model's."""
    layers = rows["layers"].dropna().unique() if "layers" in rows else []
    if len(layers) == 1:
        n = int(layers[0])
        axis = ax_t.secondary_yaxis("right", functions=(lambda us: us * n / 1e3, lambda ms: ms * 1e3 / n))
        axis.set_ylabel(f"per decode step, {n} layers (ms)")


def _draw_group(ax_t, ax_s, rows: pd.DataFrame) -> None:
    for strategy, lines in rows.groupby("strategy", sort=False):
        lines = lines.sort_values("context_len")
        style = line_style(strategy)
        ax_t.plot(lines["context_len"], lines["time_us"], **style)
        if "time_lo_us" in lines:  # the prediction's error band (attnsim.simulator.bands)
            ax_t.fill_between(lines["context_len"], lines["time_lo_us"], lines["time_hi_us"],
                              color=style["color"], alpha=0.15, linewidth=0)
        ax_s.plot(lines["context_len"], lines["speedup_vs_fa2"], **style)
    floor = rows.drop_duplicates("context_len").sort_values("context_len")
    fa2_us = floor["time_us"] * floor["speedup_vs_fa2"]  # any strategy's row knows FA2's time
    ax_t.plot(floor["context_len"], floor["floor_us"], label=FLOOR_LABEL, **FLOOR_STYLE)
    ax_s.plot(floor["context_len"], fa2_us / floor["floor_us"], label="floor bound: fa2 / floor", **FLOOR_STYLE)
    ax_t.set_yscale("log")
    ax_s.set_yscale("log", base=2)
    lo, hi = ax_s.get_ylim()
    subs = (1.0, 1.5) if hi / lo > 4 else (1.0, 1.25, 1.5, 1.75)  # labelled ticks on short ranges too
    ax_s.yaxis.set_major_locator(LogLocator(base=2, subs=subs))
    ax_s.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}×"))
    ax_s.axhline(1.0, color="grey", linewidth=0.8)
    ax_t.set_ylabel("time per layer (µs); shaded: error band")
    step_axis(ax_t, rows)
    ax_s.set_ylabel("speedup vs fa2 (×)")
    for ax in (ax_t, ax_s):
        context_axis(ax)
        ax.grid(True, which="both", alpha=0.3)
