"""Headline findings in words, from the prediction frames: who is fastest where, by how much, and
how close to the bandwidth floor. Returns HTML list items with every value escaped."""

from __future__ import annotations

import pandas as pd

from attnsim.reports.html import esc
from attnsim.reports.style import format_tokens, panels, uniform_rows


def fastest_runs(rows: pd.DataFrame) -> str:
    """'flashdecoding up to 32k, streamk from 64k' for one group's fastest strategy along context."""
    best = rows.loc[rows.groupby("context_len")["time_us"].idxmin()].sort_values("context_len")
    runs: list[list] = []  # [strategy, first context, last context]
    for strategy, context in zip(best["strategy"], best["context_len"]):
        if runs and runs[-1][0] == strategy:
            runs[-1][2] = context
        else:
            runs.append([strategy, context, context])
    if len(runs) == 1:
        return f"{runs[0][0]} at every context"
    parts = [f"{s} {'up to ' + format_tokens(hi) if i == 0 else 'from ' + format_tokens(lo)}"
             + ("" if i in (0, len(runs) - 1) else f" to {format_tokens(hi)}")
             for i, (s, lo, hi) in enumerate(runs)]
    return ", ".join(parts)


def _of_floor(row) -> str:
    """How close a prediction gets to reading the KV cache once at full bandwidth."""
    return f"{100 * row['floor_us'] / row['time_us']:.0f}% of the bandwidth floor"


def uniform_findings(frame: pd.DataFrame) -> list[str]:
    """One item per (gpu, model, batch): the fastest strategy along context, its gain at both ends."""
    items = []
    for title, rows in panels(uniform_rows(frame)):
        ends = rows.loc[rows.groupby("context_len")["time_us"].idxmin()].sort_values("context_len").iloc[[0, -1]]
        short, long = ends.iloc[0], ends.iloc[1]
        items.append(
            f"<b>{esc(title)}</b>: fastest is {esc(fastest_runs(rows))}. "
            f"At {esc(format_tokens(short['context_len']))}: {short['speedup_vs_fa2']:.1f}× over fa2; "
            f"at {esc(format_tokens(long['context_len']))}: {long['speedup_vs_fa2']:.1f}× over fa2, "
            f"{_of_floor(long)}.")
    return items


def ragged_findings(frame: pd.DataFrame) -> list[str]:
    """One item per (gpu, model, mix) of ragged batches."""
    ragged = frame[frame["mix"] != "uniform"] if "mix" in frame else frame.iloc[0:0]
    items = []
    for (gpu, model, mix), rows in ragged.groupby(["gpu", "model", "mix"], sort=False):
        best = rows.loc[rows["time_us"].idxmin()]
        items.append(
            f"<b>{esc(model)} · ragged mix {esc(mix)}</b> on {esc(gpu)} (batch {best['batch']}, "
            f"{best['total_tokens']:,} KV tokens): {esc(best['strategy'])} is fastest, "
            f"{best['speedup_vs_fa2']:.1f}× over fa2 and {best['speedup_vs_flashdecoding']:.1f}× over "
            f"flashdecoding, {_of_floor(best)}.")
    return items


def whatif_findings(frame: pd.DataFrame) -> list[str]:
    """Per model: the best time on each GPU at the longest uniform context of the largest batch."""
    rows = uniform_rows(frame)
    if rows.empty:
        return []
    rows = rows[(rows["context_len"] == rows["context_len"].max()) & (rows["batch"] == rows["batch"].max())]
    gpus = list(dict.fromkeys(frame["gpu"]))
    items = []
    for model, part in rows.groupby("model", sort=False):
        best = part.groupby("gpu", sort=False)["time_us"].min()
        ratios = ", ".join(f"{esc(g)} {best[gpus[0]] / best[g]:.2f}×" for g in gpus[1:] if g in best)
        first = part.iloc[0]
        items.append(f"<b>{esc(model)}</b>, batch {first['batch']} at {esc(format_tokens(first['context_len']))}: "
                     f"{esc(gpus[0])} {best[gpus[0]]:.0f} µs; relative speed {ratios}.")
    return items
