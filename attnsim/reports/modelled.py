"""'What was modelled' and 'GPU profiles': the scenario itself as tables (shapes, grid, ragged mixes, GPUs)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from attnsim.reports import html as h
from attnsim.reports.style import format_tokens

KIB = 1024


def shapes_table(scenario) -> pd.DataFrame:
    dtype_bytes = 4 if scenario.dtype == "float32" else 2
    return pd.DataFrame([{
        "model": s.name, "q_heads": s.q_heads, "kv_heads": s.kv_heads, "head_dim": s.head_dim,
        "attention": "MHA" if s.group == 1 else ("MQA" if s.kv_heads == 1 else f"GQA ({s.group} q/kv)"),
        "layers": s.layers if s.layers else "–",
        "KV KiB/token/layer": s.kv_bytes_per_token(dtype_bytes) / KIB, "note": s.note or "",
    } for s in scenario.shapes])


def ragged_table(scenario) -> pd.DataFrame:
    rows = []
    for mix in scenario.ragged:
        lengths = np.asarray(mix.contexts())
        rows.append({"mix": mix.name, "distribution": mix.distribution, "batch": mix.batch, "seed": mix.seed,
                     "parameters": _mix_parameters(mix), "min": format_tokens(lengths.min()),
                     "median": format_tokens(int(np.median(lengths))), "max": format_tokens(lengths.max()),
                     "total tokens": f"{int(lengths.sum()):,}"})
    return pd.DataFrame(rows)


def _mix_parameters(mix) -> str:
    if mix.distribution == "lognormal":
        return (f"median {format_tokens(mix.median_tokens)}, sigma {mix.sigma:g}, "
                f"clipped to [{format_tokens(mix.min_tokens)}, {format_tokens(mix.max_tokens)}]")
    if mix.distribution == "uniform":
        return f"[{format_tokens(mix.min_tokens)}, {format_tokens(mix.max_tokens)}]"
    values = ", ".join(format_tokens(v) for v in mix.values[:8]) + (" …" if len(mix.values) > 8 else "")
    return f"values {values}" + (f", weights {', '.join(f'{w:g}' for w in mix.weights)}" if mix.weights else "")


def gpu_table(scenario) -> pd.DataFrame:
    main = {(g.name, g.source) for g in scenario.gpus}
    gpus = list({(g.name, g.source): g for g in scenario.gpus + scenario.whatif_gpus}.values())
    return pd.DataFrame([{
        "gpu": g.name, "used for": "scenario" if (g.name, g.source) in main else "what-if",
        "source": g.source, "expected error %": g.expected_error_pct if g.expected_error_pct else "–",
        "SMs": g.sm_count, "HBM read GB/s": g.hbm_read_gbps,
        "L2 MiB": g.l2_bytes / KIB / KIB, "clock MHz": g.clock_mhz,
        "compute capability": ".".join(map(str, g.compute_capability)), "max CTAs/SM": g.max_ctas_per_sm,
        "max warps/SM": g.max_warps_per_sm, "smem/SM KiB": g.smem_per_sm_bytes // KIB,
    } for g in gpus])


def modelled_section(results, out):
    """(anchor, heading, html) of the 'What was modelled' section."""
    s = results.scenario
    grid = (f"Uniform grid: batch {', '.join(map(str, s.batches))} × context "
            f"{', '.join(format_tokens(c) for c in s.contexts)} ({len(s.contexts)} lengths)" if s.contexts else
            "No uniform grid (ragged mixes only)")
    n_cases = len(s.uniform_cases()) + len(s.ragged_cases())
    facts = [
        h.esc(grid),
        f"{len(s.ragged)} ragged mix(es); {len(s.shapes)} shape(s); {n_cases} cases × "
        f"{len(s.strategies)} strategies ({h.esc(', '.join(s.strategies))}) on {len(s.gpus)} GPU profile(s)",
        f"dtype {h.esc(s.dtype)}, {s.q_len} new token(s) per sequence per step; times are per attention layer",
    ]
    parts = [h.para(h.esc(s.description)) if s.description else "", h.bullet_list(facts, "facts"),
             h.table(shapes_table(s), "Attention shapes")]
    if s.ragged:
        parts.append(h.table(ragged_table(s), "Ragged-batch generators"))
    return "modelled", "What was modelled", "".join(parts)
