"""SM timeline (Gantt) of a simulated schedule: one row per SM, one lane per resident CTA slot.

Each CTA is a bar from its start to its end, in two parts: streaming its KV bytes (coloured by what
the CTA produces: a complete output, a partial for someone else's fix-up, or a host that merges
partials; combine-launch CTAs in their own colour), then its fixed tail (prologue/epilogue; for a
host, waiting for its peers' partials and merging them: the fix-up). The pink background is slot
time no CTA used (idle SMs); hatched grey is launch overhead; dotted lines mark where a later wave of
CTAs starts (grid larger than the resident slots). Several strategies' panels share one time axis,
so the lengths of their bars compare directly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.patches import Patch

from attnsim.reports.style import finish, new_grid, workload_title
from attnsim.simulator.schedule import ROLE_COMPLETE, ROLE_HOST, ROLE_PEER

ROLE_COLORS = {ROLE_COMPLETE: "#4C72B0", ROLE_PEER: "#DD8452", ROLE_HOST: "#C44E52", "combine": "#8172B3"}
ROLE_NAMES = {ROLE_COMPLETE: "streams KV, writes O", ROLE_PEER: "streams KV, writes a partial",
              ROLE_HOST: "host: streams KV, merges partials", "combine": "combine launch"}
TAIL_COLOR, FIXUP_COLOR = "#B8B8B8", "#6B1A1A"
IDLE = dict(color="#F6DADA", zorder=0)
OVERHEAD = dict(facecolor="#E4E4E4", edgecolor="#9A9A9A", hatch="///", linewidth=0, zorder=0)


def cta_roles(launch) -> np.ndarray:
    """Per CTA of a launch: the strongest role among its segments (host > partial > complete)."""
    if launch.segments is None:
        return np.full(launch.grid, "combine", dtype=object)
    roles = np.zeros(launch.grid, dtype=np.int64)
    np.maximum.at(roles, launch.segments.cta, launch.segments.role)
    return roles.astype(object)


def sm_idle_fraction(result) -> float:
    """Share of SM-time inside the launches (overhead excluded) in which an SM ran no CTA at all."""
    busy = span = 0.0
    for tl in result.launches:
        sm = tl.cta_slot % result.sm_count
        for s in np.unique(sm):
            busy += _union_length(tl.cta_start_us[sm == s], tl.cta_end_us[sm == s])
        span += (tl.end_us - tl.start_us) * result.sm_count
    return 1.0 - busy / span if span > 0 else 0.0


def _union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    """Length (µs) of the union of intervals [starts[i], ends[i])."""
    order = np.argsort(starts)
    total, cur_start, cur_end = 0.0, -np.inf, -np.inf
    for a, b in zip(starts[order], ends[order]):
        if a > cur_end:
            total += max(0.0, cur_end - cur_start)
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    return total + max(0.0, cur_end - cur_start)


def waves(tl) -> int:
    """ceil(grid / resident slots): how many rounds of CTAs a launch needs."""
    return -(-len(tl.cta_start_us) // tl.slots)


def wave_starts(tl) -> list[float]:
    """Start time (µs) of each wave after the first: when CTA k x slots is dispatched."""
    return [float(tl.cta_start_us[k * tl.slots]) for k in range(1, waves(tl))]


def draw_timeline(ax, result, max_sms: int | None = None) -> set:
    """Draw one schedule's Gantt on `ax`; returns the legend keys used."""
    sms = result.sm_count if max_sms is None else min(max_sms, result.sm_count)
    used, prev_end = {"idle"}, 0.0
    for launch, tl in zip(result.schedule.launches, result.launches):
        if tl.start_us > prev_end:
            ax.axvspan(prev_end, tl.start_us, **OVERHEAD)
            used.add("overhead")
        ax.axvspan(tl.start_us, tl.end_us, **IDLE)
        used |= _draw_ctas(ax, tl, cta_roles(launch), result.sm_count, sms)
        for k, t in enumerate(wave_starts(tl), start=2):
            ax.axvline(t, color="black", linestyle=":", linewidth=1)
            ax.text(t, sms - 0.5, f" wave {k}", fontsize=7, va="bottom")
        prev_end = tl.end_us
    ax.set(xlim=(0, result.total_us * 1.01), ylim=(-0.7, sms - 0.3), ylabel="SM", xlabel="time (µs)")
    ax.set_title(_title(result), fontsize=10, loc="left")
    return used


def _draw_ctas(ax, tl, roles: np.ndarray, sm_count: int, sms: int) -> set:
    lanes = max(1, tl.slots // sm_count)  # CTA slots per SM
    sm, lane = tl.cta_slot % sm_count, tl.cta_slot // sm_count
    y = sm - 0.45 + (lane + 0.5) * 0.9 / lanes
    height = 0.85 / lanes
    keep = sm < sms
    used = set()
    for role in ROLE_COLORS:
        mask = keep & (roles == role)
        if mask.any():
            _bars(ax, y[mask], tl.cta_start_us[mask], tl.cta_stream_end_us[mask], height, ROLE_COLORS[role])
            used.add(role)
    tail = tl.cta_end_us - tl.cta_stream_end_us
    for is_host, color in ((False, TAIL_COLOR), (True, FIXUP_COLOR)):
        mask = keep & ((roles == ROLE_HOST) == is_host) & (tail > 0)
        if mask.any():
            _bars(ax, y[mask], tl.cta_stream_end_us[mask], tl.cta_end_us[mask], height, color)
            used.add("fixup" if is_host else "tail")
    return used


def _bars(ax, y, start, end, height: float, color: str) -> None:
    """Rectangles [start, end] x [y - height/2, y + height/2] as one collection (fast for 10^4 CTAs)."""
    lo, hi = y - height / 2, y + height / 2
    verts = np.stack([np.c_[start, lo], np.c_[end, lo], np.c_[end, hi], np.c_[start, hi]], axis=1)
    ax.add_collection(PolyCollection(verts, facecolors=color, edgecolors="none", linewidths=0))


def _title(result) -> str:
    sched = result.schedule
    rounds = max(waves(tl) for tl in result.launches)
    launches = " + ".join(f"{tl.name} grid {len(tl.cta_start_us)}" for tl in result.launches)
    return (f"{sched.strategy}: {result.total_us:.1f} µs, {result.bw_fraction:.0%} of HBM bandwidth, "
            f"SMs idle {sm_idle_fraction(result):.0%} of kernel time · {launches} "
            f"({result.launches[0].slots} slots, {rounds} wave{'s' if rounds > 1 else ''})")


def legend_handles(used: set) -> list:
    entries = [(k, ROLE_NAMES[k], ROLE_COLORS[k]) for k in ROLE_COLORS if k in used]
    entries += [("tail", "fixed tail (q load, epilogue)", TAIL_COLOR), ("fixup", "fix-up: wait + merge", FIXUP_COLOR)]
    handles = [Patch(color=c, label=label) for key, label, c in entries if key in used]
    handles.append(Patch(label="idle SM slot", **{k: v for k, v in IDLE.items() if k != "zorder"}))
    if "overhead" in used:
        handles.append(Patch(label="launch overhead", **{k: v for k, v in OVERHEAD.items() if k != "zorder"}))
    return handles


def plot_timelines(results, out_path=None, max_sms: int | None = None, model: str = ""):
    """One Gantt panel per SimResult (e.g. one per strategy) of one workload, all on one time axis;
    the figure's title names the workload (`model`: its name) and the GPU. Returns the figure."""
    results = list(results)
    fig, axes = new_grid(len(results), 1, width=12.0, row_height=4.2)
    used = set()
    for ax, result in zip(axes[:, 0], results):
        used |= draw_timeline(ax, result, max_sms)
        ax.sharex(axes[0, 0])
    axes[0, 0].set_xlim(0, max(r.total_us for r in results) * 1.01)
    fig.suptitle(workload_title(results[0].schedule.workload, model, results[0].schedule.gpu_name), fontsize=11)
    fig.legend(handles=legend_handles(used), loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    return finish(fig, out_path)


def plot_timeline(result, out_path=None, max_sms: int | None = None, model: str = ""):
    """The Gantt of one simulated schedule (`attnsim schedule --plot`). Returns the figure."""
    return plot_timelines([result], out_path, max_sms, model)


def timeline_table(results) -> pd.DataFrame:
    """Per SimResult: time, bandwidth share, SM idle share, grid, slots and waves of each launch."""
    rows = []
    for r in results:
        rows.append({"strategy": r.schedule.strategy, "time_us": round(r.total_us, 1),
                     "hbm_bw_pct": round(100 * r.bw_fraction, 1),
                     "sm_idle_pct": round(100 * sm_idle_fraction(r), 1),
                     "launches": " + ".join(f"{tl.name} {len(tl.cta_start_us)} CTAs / {tl.slots} slots, "
                                            f"{waves(tl)} wave(s)" for tl in r.launches),
                     "fix-ups": len(r.schedule.reductions)})
    return pd.DataFrame(rows)
