"""The model's error on every plan the planner may pick, from an oracle study (issue 20 item 1).

    PYTHONPATH=. python3 scripts/oracle_errors.py results/h200/planner_oracle.csv [--gpu h200]

Every measured plan of our kernels in the study (status ok, fp64-checked) is predicted as the plan it
ran with the profile (the shipped one by default; scripts/oracle_replay.py predicts the same way).
Two errors per row, in percent:
- `err`: predicted / measured - 1, the plain model error (negative = the model is optimistic);
- `rank_err`: the row's (predicted / measured) over that of its workload's fastest measured plan,
  minus 1. Only this one moves an argmin: a plan with rank_err -5% looks 5% better against the best
  plan than it is, and is picked over it when the two measure within 5%.
Tables (markdown) by plan family and search-axis value (stream-K and hybrid grid as a multiple of the
SM count, split counts, chunk sizes, hybrid DP outputs), by regime (batch, context, query heads), and
the ten workloads with the largest regret: the pick's and the best plan's predicted vs measured time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from attnsim.profiles import resolve_gpu

sys.path.insert(0, str(Path(__file__).parent))
from oracle_replay import KEY, picks, predicted_candidates  # noqa: E402


def _bucket(value: float, edges: list[float], labels: list[str]) -> str:
    """labels[i] for the first edge value < edges[i]; the last label above all edges."""
    return next((lab for edge, lab in zip(edges, labels) if value < edge), labels[-1])


def _option(options: str, name: str) -> int | None:
    """The integer value of `name=` in an options string ('grid=264,dp_outputs=0'), None if absent."""
    for part in str(options).split(","):
        key, _, value = part.partition("=")
        if key.strip() == name and value:
            return int(value)
    return None


def grid_multiple(grid: int, sm_count: int) -> str:
    """A persistent grid as a multiple of the SM count: the axis the grid search walks (1 to 2 CTAs/SM)."""
    ratio = grid / sm_count
    if ratio in (1.0, 2.0):
        return f"grid = {ratio:.0f}x SMs"
    return "grid " + _bucket(ratio, [1.0, 1.5, 2.0], ["< 1x SMs", "1-1.5x SMs", "1.5-2x SMs", "> 2x SMs"])


def search_axis(row: dict, sm_count: int) -> str:
    """The search-axis value a measured plan sits at (observed grid / splits, asked options)."""
    strategy, options = row["strategy"], row["options"]
    if strategy == "streamk":
        return grid_multiple(int(row["grid"]), sm_count)
    if strategy == "hybrid":
        dp = _option(options, "dp_outputs")
        return f"{grid_multiple(int(row['grid']), sm_count)}, " + ("dp default" if dp is None else
                                                                    "dp 0" if dp == 0 else "dp > 0")
    if strategy in ("flashdecoding", "splitkv"):
        return "splits " + _bucket(int(row["splits"]), [2, 5, 17, 65], ["1", "2-4", "5-16", "17-64", "> 64"])
    if strategy == "balanced":
        chunk = _option(options, "chunk_tokens")
        return "chunk default" if chunk is None else "chunk " + _bucket(chunk, [513, 2049, 8193],
                                                                         ["<= 512", "513-2048", "2049-8192", "> 8192"])
    return "-"


def with_rank_errors(rows: pd.DataFrame) -> pd.DataFrame:
    """rows plus err and rank_err (percent): the error against the workload's fastest measured plan."""
    rows = rows.copy()
    ratio = rows["predicted_us"] / rows["time_us"]
    best = rows.groupby(KEY, sort=False)["time_us"].transform("idxmin")
    rows["err"] = 100 * (ratio - 1)
    rows["rank_err"] = 100 * (ratio / ratio.loc[best].to_numpy() - 1)
    return rows


def regime_labels(rows: pd.DataFrame) -> pd.DataFrame:
    """Regime columns: batch, context (the row's `context`, the longest of a ragged batch), query heads
    and GQA group (query heads per KV head: the query rows of one KV tile's math)."""
    return pd.DataFrame({
        "batch size": rows["batch"].map(lambda b: _bucket(b, [2, 4, 9], ["b1", "b2-3", "b4-8", "b>8"])),
        "context length": rows["context"].map(lambda c: _bucket(c, [2048, 16384, 65536], ["< 2k", "2k-16k", "16k-64k", ">= 64k"])),
        "query heads": rows["q_heads"].map(lambda h: _bucket(h, [9, 24, 65], ["<= 8", "9-23", "24-64", "> 64"])),
        "group": (rows["q_heads"] // rows["kv_heads"]).map(lambda g: _bucket(g, [3, 5, 9, 17], ["1-2", "3-4", "5-8", "9-16", "> 16"])),
    }, index=rows.index)


def error_table(rows: pd.DataFrame, by: list[str]) -> str:
    """Markdown: per group, plans, workloads, mean signed err, MAPE, mean / p10 rank_err (percent)."""
    lines = [f"| {' | '.join(by)} | plans | workloads | mean err % | MAPE % | mean rank err % | p10 rank err % |",
             "|" + "---|" * len(by) + "---:|" * 6]
    for key, g in rows.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        lines.append(f"| {' | '.join(map(str, key))} | {len(g)} | {g.groupby(KEY).ngroups} | {g['err'].mean():+.1f} | "
                     f"{g['err'].abs().mean():.1f} | {g['rank_err'].mean():+.1f} | {np.percentile(g['rank_err'], 10):+.1f} |")
    return "\n".join(lines)


def worst_table(table: pd.DataFrame, count: int = 10) -> str:
    """Markdown: the `count` workloads of largest regret, the pick's and best plan's predicted vs measured (µs)."""
    lines = ["| workload | regret % | pick | pred | meas | best | pred | meas |", "|---|---:|---|---:|---:|---|---:|---:|"]
    for r in table.nlargest(count, "regret_pct").itertuples():
        context = str(r.contexts) if ";" not in str(r.contexts) else f"ragged {len(str(r.contexts).split(';'))}"
        lines.append(f"| b{r.batch} {r.q_heads}/{r.kv_heads} {context} | {r.regret_pct:.1f} | {r.pick} | "
                     f"{r.pick_predicted_us:.1f} | {r.pick_us:.1f} | {r.best} | {r.best_predicted_us:.1f} | {r.best_us:.1f} |")
    return "\n".join(lines)


def grid_curves(rows: pd.DataFrame, sm_count: int) -> str:
    """Markdown: stream-K measured / predicted µs at each grid, for the workloads measured at a grid
    between 1 and 1.5 CTAs per SM (where a few SMs hold two CTAs and the rest one)."""
    streamk = rows[rows["strategy"].eq("streamk")]
    lines = ["| workload | grid: measured / predicted µs |", "|---|---|"]
    for key, g in streamk.groupby(KEY, sort=False):
        if not ((g["grid"] > sm_count) & (g["grid"] < 1.5 * sm_count)).any():
            continue
        context = str(key[4]) if ";" not in str(key[4]) else f"ragged {len(str(key[4]).split(';'))}"
        points = " · ".join(f"{int(r.grid)}: {r.time_us:.0f} / {r.predicted_us:.0f}" for r in g.sort_values("grid").itertuples())
        lines.append(f"| b{key[0]} {key[1]}/{key[2]} {context} | {points} |")
    return "\n".join(lines)


def report(frame: pd.DataFrame, gpu) -> str:
    rows = predicted_candidates(frame, gpu)
    table = picks(frame, gpu, rows)
    rows = with_rank_errors(rows)
    rows["search axis"] = [search_axis(r, gpu.sm_count) for r in rows.to_dict("records")]
    rows = rows.join(regime_labels(rows))
    r = table["regret_pct"]
    return "\n\n".join([
        f"{len(rows)} measured plans, {len(table)} workloads; the model's pick: regret mean {r.mean():.2f}%, "
        f"p95 {np.percentile(r, 95):.2f}%, max {r.max():.2f}%",
        "By plan family and search-axis value:", error_table(rows, ["strategy", "search axis"]),
        "By regime:", error_table(rows, ["batch size"]), error_table(rows, ["context length"]),
        error_table(rows, ["query heads"]),
        "By plan family and GQA group:", error_table(rows, ["strategy", "group"]),
        "By plan family and context length:", error_table(rows, ["strategy", "context length"]),
        "The ten largest regrets (µs):", worst_table(table),
        f"Stream-K time against grid ({gpu.sm_count} SMs), where a grid of 1-1.5x SMs was measured:",
        grid_curves(rows, gpu.sm_count)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--gpu", default="h200")
    args = ap.parse_args()
    frame = pd.read_csv(args.csv, dtype={"contexts": str, "options": str, "status": str})
    print(report(frame, resolve_gpu(args.gpu)))


if __name__ == "__main__":
    main()
