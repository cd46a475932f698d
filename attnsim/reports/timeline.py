"""SM timeline (Gantt): one row per SM, a bar per CTA, coloured by launch."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from attnsim.fileio import save_figure  # noqa: E402


def plot_timeline(result, out_path=None, max_sms: int | None = None):
    """Bars of CTA (start, end) per SM for every launch of a simulated schedule. Returns the figure."""
    sms = result.sm_count if max_sms is None else min(max_sms, result.sm_count)
    fig, ax = plt.subplots(figsize=(11, max(3.0, sms * 0.05 + 1.5)))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, tl in enumerate(result.launches):
        sm = tl.cta_slot % result.sm_count
        keep = sm < sms
        ax.barh(sm[keep], (tl.cta_end_us - tl.cta_start_us)[keep], left=tl.cta_start_us[keep], height=0.8,
                color=colors[i % len(colors)], label=tl.name, alpha=0.7, edgecolor="none")
    sched = result.schedule
    ax.set(xlabel="time (µs)", ylabel="SM", ylim=(-1, sms),
           title=f"{sched.strategy}: {result.total_us:.1f} µs, {result.bw_fraction:.0%} of HBM bandwidth")
    ax.legend(loc="upper right")
    fig.tight_layout()
    if out_path:
        save_figure(fig, out_path, dpi=120)
    return fig
