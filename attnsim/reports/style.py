"""What every figure shares: colours per strategy and per GPU, token-count labels, log2 context axes,
the serving settings in titles, saving."""

from __future__ import annotations

import zlib
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
from attnsim.simulator.hardware import ALIASES as GPU_ALIASES  # noqa: E402
from attnsim.units import format_tokens  # noqa: E402,F401  (re-exported: the figures' tick labels)

# One colour per GPU in every figure, whatever the order or the company it is drawn in (the presets;
# profiles of another name take one of OTHER_GPU_COLORS by a hash of the name, the same every time).
GPU_COLORS = {"h100-sxm": "#4C72B0", "h200": "#55A868", "b200": "#DD8452", "a100-80gb": "#C44E52",
              "l40s": "#8172B3"}
OTHER_GPU_COLORS = ("#64B5CD", "#937860", "#DA8BC3", "#CCB974", "#8C8C8C")
FLOOR_STYLE = dict(color="black", linestyle="--", linewidth=1.2)
DPI = 110
SHORT_DTYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float8_e4m3fn": "fp8"}


def strategy_color(name: str) -> str:
    return strategies.color(name)


def gpu_color(name: str) -> str:
    """The GPU's colour in every figure: 'h100' and 'h100-sxm' alike."""
    key = GPU_ALIASES.get(str(name).lower(), str(name).lower())
    if key in GPU_COLORS:
        return GPU_COLORS[key]
    return OTHER_GPU_COLORS[zlib.crc32(key.encode()) % len(OTHER_GPU_COLORS)]


def setting_text(column: str, value) -> str:
    """One serving setting as a title says it; '' for the default (TP 1, contiguous, fp16 KV, decode)."""
    if value is None or pd.isna(value):
        return ""
    if column == "tp":
        return f"TP {int(value)}" if int(value) > 1 else ""
    if column == "kv_dtype":
        return f"{SHORT_DTYPES.get(value, value)} KV" if value != "float16" else ""
    if column == "page_size":
        return f"{int(value)}-token pages" if int(value) else ""
    if column == "q_len":
        return f"q_len {int(value)}" if int(value) > 1 else ""
    return ""


SETTINGS = ("tp", "kv_dtype", "page_size", "q_len")  # the serving settings titles name, in this order


def settings_label(values: dict) -> str:
    """'TP 8 · fp8 KV · 16-token pages' from a row (or dict) of the settings columns it has."""
    return " · ".join(t for t in (setting_text(c, values[c]) for c in SETTINGS if c in values) if t)


def common_settings(frame: pd.DataFrame) -> str:
    """The settings every row of `frame` shares, as a title says them ('' when none is set)."""
    shared = {c: frame[c].iloc[0] for c in SETTINGS if c in frame.columns and frame[c].nunique(dropna=False) == 1}
    return settings_label(shared)


def varying_settings(frame: pd.DataFrame) -> tuple[str, ...]:
    """Settings columns whose value differs between rows: panels are split by them."""
    return tuple(c for c in SETTINGS if c in frame.columns and frame[c].nunique(dropna=False) > 1)


def figure_title(fig, title: str, settings: str = "") -> None:
    """The figure's title with the serving settings it was modelled with, when any is set."""
    text = " · ".join(t for t in (title, settings) if t)
    if text:
        fig.suptitle(text, fontsize=11)


def context_axis(ax, label: str = "context length (tokens per sequence)") -> None:
    """Log2 x axis with ticks at powers of two labelled 1k, 4k, ... 512k."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2, numticks=24))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: format_tokens(x) if x >= 1 else ""))
    ax.set_xlabel(label)


def workload_title(workload, model: str = "", gpu: str = "") -> str:
    """'llama-3.1-8b · ragged, 32 sequences, 2000–200000 tokens · TP 8 · fp8 KV on h200': short at any
    batch (a ragged batch by its count and range, never every length)."""
    w = workload
    shape = model or f"q{w.q_heads}/kv{w.kv_heads}/d{w.head_dim}"
    lo, hi = min(w.contexts), max(w.contexts)
    batch = (f"ragged, {w.batch} sequences, {format_tokens(lo)}–{format_tokens(hi)} tokens" if lo != hi
             else f"batch {w.batch} × {format_tokens(lo)} tokens")
    settings = settings_label({"tp": w.tp, "kv_dtype": w.cache_dtype, "page_size": w.page_size, "q_len": w.q_len})
    return " · ".join(p for p in (shape, batch, settings) if p) + (f" on {gpu}" if gpu else "")


def check_figure_path(path: str | Path) -> Path:
    """Figures are PNG or SVG; the suffix decides."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError("out", f"{path.name}: figure files end in {' or '.join(FIGURE_SUFFIXES)}")
    return path


def finish(fig, out_path=None):
    """Save atomically when a path is given (format from its suffix); return the figure. The layout
    is matplotlib's constrained layout (new_grid): it leaves room for the suptitle, every axis
    label and a figure legend placed 'outside', which tight_layout did not."""
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
    """Split a frame into one panel per (gpu, model/shape, batch), in order of first appearance, and
    per serving setting that differs between rows (a CSV of bf16 and fp8 rows: one panel each)."""
    frame = frame.assign(_shape=[shape_label(r) for _, r in frame.iterrows()])
    cols = [k if k != "model" else "_shape" for k in keys if k in frame.columns or k == "model"]
    cols += list(varying_settings(frame))
    out = []
    for key, rows in frame.groupby(cols, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        parts = [f"batch {v}" if c == "batch" else setting_text(c, v) if c in SETTINGS else str(v)
                 for c, v in zip(cols, key)]
        out.append((" · ".join(p for p in parts if p), rows.drop(columns="_shape")))
    return out


def new_grid(rows: int, cols: int, width: float = 11.0, row_height: float = 3.4):
    """A figure with a rows x cols array of axes (always 2-D), laid out by constrained layout."""
    fig, axes = plt.subplots(rows, cols, figsize=(width, row_height * rows + 0.4), squeeze=False,
                             layout="constrained")
    return fig, axes
