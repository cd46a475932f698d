"""Headline findings in words, from the prediction frames: who is fastest where, by how much, and
how close to the floor (a pure read of the bytes). Returns HTML list items with every value escaped."""

from __future__ import annotations

import pandas as pd

from attnsim import strategies
from attnsim.reports.html import esc
from attnsim.reports.style import format_tokens, panels, uniform_rows
from attnsim.reports.tables import fastest_label

TIE = 0.005  # relative time difference below which two predictions are called equal


def runs(contexts, labels) -> str:
    """'a up to 32k, b from 64k' for labels along ascending contexts ('a at every context' when one)."""
    found: list[list] = []  # [label, first context, last context]
    for label, context in zip(labels, contexts):
        if found and found[-1][0] == label:
            found[-1][2] = context
        else:
            found.append([label, context, context])
    if len(found) == 1:
        return f"{found[0][0]} at every context"
    last = len(found) - 1
    parts = [f"{s} up to {format_tokens(hi)}" if i == 0 else f"{s} from {format_tokens(lo)}" if i == last
             else f"{s} at {format_tokens(lo)}" if lo == hi else f"{s} from {format_tokens(lo)} to {format_tokens(hi)}"
             for i, (s, lo, hi) in enumerate(found)]
    return ", ".join(parts)


def fastest_runs(rows: pd.DataFrame) -> str:
    """'flashdecoding up to 32k, streamk from 64k' for one group's fastest strategy along context."""
    best = rows.loc[rows.groupby("context_len")["time_us"].idxmin()].sort_values("context_len")
    return runs(best["context_len"], best["strategy"])


def _of_floor(row) -> str:
    """How close a prediction gets to a pure read of its bytes under the bench's timer (its floor)."""
    return f"{100 * row['floor_us'] / row['time_us']:.0f}% of the floor's speed"


def _role(name: str) -> str:
    """'ours' (a partitioning), 'choice' (the planner's: auto) or 'baseline' (a third-party library)."""
    entry = strategies.get(name)
    return "choice" if entry.planned else "baseline" if entry.baseline else "ours"


def uniform_findings(frame: pd.DataFrame) -> list[str]:
    """One item per (gpu, model, batch): the fastest partitioning along context and its gain at both
    ends; what the planner chose and gained; where a baseline is faster; the per-step total."""
    items = []
    for title, rows in panels(uniform_rows(frame)):
        roles = rows["strategy"].map(_role)
        ours = rows[roles == "ours"]
        best = ours.loc[ours.groupby("context_len")["time_us"].idxmin()].sort_values("context_len")
        short, long = best.iloc[0], best.iloc[-1]
        parts = [f"<b>{esc(title)}</b>: the fastest partitioning is {esc(fastest_runs(ours))}. "
                 f"At {esc(format_tokens(short['context_len']))}: {short['speedup_vs_fa2']:.1f}× over fa2; "
                 f"at {esc(format_tokens(long['context_len']))}: {long['speedup_vs_fa2']:.1f}× over fa2, "
                 f"{_of_floor(long)}."]
        parts += [_planner_finding(rows[roles == "choice"], best)] if (roles == "choice").any() else []
        parts += [_baseline_finding(part, name, rows[roles != "baseline"])
                  for name, part in rows[roles == "baseline"].groupby("strategy", sort=False)]
        has_layers = "layers" in rows and rows["layers"].notna().any()
        parts += [_step_finding(rows[roles != "baseline"])] if has_layers else []
        items.append(" ".join(parts))
    return items


def _planner_finding(planner: pd.DataFrame, best: pd.DataFrame) -> str:
    planner = planner.sort_values("context_len")
    gain = 100 * (best.set_index("context_len")["time_us"] / planner.set_index("context_len")["time_us"] - 1)
    said = (f"up to {gain.max():.0f}% faster than the best partitioning" if gain.max() >= 100 * TIE
            else "as fast as the best partitioning")
    return f"The planner (auto) runs {esc(runs(planner['context_len'], planner['plan']))}: {said}."


def _baseline_finding(part: pd.DataFrame, name: str, ours: pd.DataFrame) -> str:
    """Where a baseline beats our fastest plan (auto included), or by how much it is slower."""
    best = ours.groupby("context_len")["time_us"].min()
    ratio = (part.set_index("context_len")["time_us"] / best.reindex(part["context_len"])).sort_index()
    faster = ratio < 1 - TIE
    if not faster.any():
        return (f"{esc(name)} (modelled) is nowhere faster than ours ({100 * (ratio.min() - 1):+.0f}% to "
                f"{100 * (ratio.max() - 1):+.0f}% time).")
    where = runs(ratio.index, ["faster" if f else "slower" for f in faster])  # 'faster up to 2k, slower ...'
    spans = [p.removeprefix("faster ") for p in where.split(", ") if p.startswith("faster")]
    return (f"{esc(name)} (modelled) is faster than ours {esc(', '.join(spans))} "
            f"(by up to {100 * (1 - ratio.min()):.0f}%).")


def _step_finding(rows: pd.DataFrame) -> str:
    """The attention of one decode step through every layer at the longest context, fastest plan."""
    longest = rows[rows["context_len"] == rows["context_len"].max()]
    best = longest.loc[longest["token_attention_us"].idxmin()]
    return (f"One decode step through all {int(best['layers'])} layers at "
            f"{esc(format_tokens(best['context_len']))}: {best['token_attention_us'] / 1e3:.2f} ms of attention "
            f"({esc(best['strategy'])}).")


def ragged_findings(frame: pd.DataFrame) -> list[str]:
    """One item per (gpu, model, mix) of ragged batches."""
    ragged = frame[frame["mix"] != "uniform"] if "mix" in frame else frame.iloc[0:0]
    items = []
    for (gpu, model, mix), rows in ragged.groupby(["gpu", "model", "mix"], sort=False):
        best = rows.loc[rows["time_us"].idxmin()]
        step = (f" One decode step through all {int(best['layers'])} layers: "
                f"{best['token_attention_us'] / 1e3:.2f} ms of attention." if pd.notna(best.get("layers")) else "")
        items.append(
            f"<b>{esc(model)} · ragged mix {esc(mix)}</b> on {esc(gpu)} (batch {best['batch']}, "
            f"{best['total_tokens']:,} KV tokens): {esc(fastest_label(best['strategy'], best.get('plan', '')))} "
            f"is fastest, {best['speedup_vs_fa2']:.1f}× over fa2 and {best['speedup_vs_flashdecoding']:.1f}× over "
            f"flashdecoding, {_of_floor(best)}.{step}")
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
