"""What every figure shares: colours per strategy, token-count labels, log2 context axes, saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator  # noqa: E402

from attnsim import strategies  # noqa: E402
from attnsim.errors import InputError  # noqa: E402
from attnsim.fileio import save_figure  # noqa: E402
from attnsim.pathcheck import FIGURE_SUFFIXES  # noqa: E402
from attnsim.units import format_tokens  # noqa: E402,F401  (re-exported: the figures' tick labels)

GPU_COLORS = ("#4C72B0", "#55A868", "#C44E52", "#8172B3", "#CCB974", "#64B5CD")
FLOOR_STYLE = dict(color="black", linestyle="--", linewidth=1.2)
DPI = 110


def strategy_color(name: str) -> str:
    return strategies.color(name)


def context_axis(ax, label: str = "context length (tokens per sequence)") -> None:
    """Log2 x axis with ticks at powers of two labelled 1k, 4k, ... 512k."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2, numticks=24))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: format_tokens(x) if x >= 1 else ""))
    ax.set_xlabel(label)


def check_figure_path(path: str | Path) -> Path:
    """Figures are PNG or SVG; the suffix decides."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError("out", f"{path.name}: figure files end in {' or '.join(FIGURE_SUFFIXES)}")
    return path


def finish(fig, out_path=None, rect=None):
    """Lay out (within `rect` of the figure, leaving room for a figure legend), save atomically when a
    path is given (format from its suffix), return the figure."""
    fig.tight_layout(rect=rect)
    if out_path:
        save_figure(fig, check_figure_path(out_path), dpi=DPI)
    return fig


def uniform_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of uniform batches (one context length), with a numeric `context_len` column."""
    lengths = pd.to_numeric(frame["context"], errors="coerce")
    return frame.assign(context_len=lengths).dropna(subset=["context_len"])


def shape_label(row) -> str:
    """The model name, or q/kv/d for a raw shape without one."""
    model = row.get("model") if hasattr(row, "get") else None
    if isinstance(model, str) and model:
        return model
    return f"q{row['q_heads']}/kv{row['kv_heads']}/d{row['head_dim']}"


def panels(frame: pd.DataFrame, keys: tuple[str, ...] = ("gpu", "model", "batch")) -> list[tuple[str, pd.DataFrame]]:
    """Split a frame into one panel per (gpu, model/shape, batch), in order of first appearance."""
    frame = frame.assign(_shape=[shape_label(r) for _, r in frame.iterrows()])
    cols = [k if k != "model" else "_shape" for k in keys if k in frame.columns or k == "model"]
    out = []
    for key, rows in frame.groupby(cols, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        parts = [f"batch {v}" if c == "batch" else str(v) for c, v in zip(cols, key)]
        out.append((" · ".join(parts), rows.drop(columns="_shape")))
    return out


def new_grid(rows: int, cols: int, width: float = 11.0, row_height: float = 3.4):
    """A figure with a rows x cols array of axes (always 2-D)."""
    fig, axes = plt.subplots(rows, cols, figsize=(width, row_height * rows + 0.4), squeeze=False)
    return fig, axes
