"""A readable summary of a Schedule and its simulated timeline (for `attnsim schedule`)."""

from __future__ import annotations

from attnsim.simulator.engine import SimResult
from attnsim.simulator.schedule import LAST_ARRIVAL, ROLE_HOST, ROLE_PEER, Schedule

_ROLE_NAMES = {0: "complete", ROLE_PEER: "partial", ROLE_HOST: "host"}


def describe_schedule(sched: Schedule, result: SimResult, max_ctas: int = 40) -> str:
    w = sched.workload
    attn = sched.attention
    lines = [
        f"{sched.strategy} on {sched.gpu_name}: batch {w.batch}, heads {w.q_heads}/{w.kv_heads}, "
        f"head_dim {w.head_dim}, context {w.context_label}, {w.dtype}"
        + (f" ({w.serving_label})" if w.serving_label else "") + f", tile {sched.kv_tile_tokens} tokens",
        f"launches: {', '.join(f'{l.name} (grid {l.grid})' for l in sched.launches)}; "
        f"splits {sched.splits}; reductions {len(sched.reductions)}; "
        + ", ".join(f"{k} {v}" for k, v in sched.notes.items() if v is not None),
        f"predicted {result.total_us:.2f} us, {result.achieved_gbps:.0f} GB/s "
        f"({result.bw_fraction:.1%} of {result.hbm_read_gbps:.0f})",
        "",
        "cta  start_us   end_us  tiles  segments (seq/head:first+count role)",
    ]
    segs = attn.segments
    offsets = segs.offsets(attn.grid)
    tl = result.launches[0]
    for cta in range(min(attn.grid, max_ctas)):
        rows = range(offsets[cta], offsets[cta + 1])
        parts = [f"{segs.seq[r]}/{segs.kv_head[r]}:{segs.first_tile[r]}+{segs.n_tiles[r]} {_ROLE_NAMES[segs.role[r]]}"
                 for r in rows]
        lines.append(f"{cta:>3} {tl.cta_start_us[cta]:>9.2f} {tl.cta_end_us[cta]:>8.2f} "
                     f"{attn.cta_tiles[cta]:>6}  {'; '.join(parts) or '(idle)'}")
    if attn.grid > max_ctas:
        lines.append(f"... {attn.grid - max_ctas} more CTAs (--max-ctas)")
    red = sched.reductions
    if len(red):
        lines.append("")
        lines.append("fix-ups: output (seq/head) <- merged by [peers]")
        for r in range(min(len(red), max_ctas)):
            where = (f"host CTA {red.host_cta[r]}" if red.host_cta[r] >= 0 else
                     "the last to arrive of" if red.host_cta[r] == LAST_ARRIVAL else "combine launch")
            lines.append(f"  {red.seq[r]}/{red.kv_head[r]}: {where} <- {list(map(int, red.peers_of(r)))}")
    return "\n".join(lines)
