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


def serving_settings(scenario) -> str:
    """Every serving setting, defaults included: 'TP 8 · q/o bfloat16 · KV cache float8_e4m3fn, paged
    in 16-token pages · decode (1 new token per sequence)'."""
    tp = ", ".join(str(t) for t in dict.fromkeys(shape.tp for shape in scenario.shapes))
    kv = scenario.kv_dtype or scenario.dtype
    layout = f"paged in {scenario.page_size}-token pages" if scenario.page_size else "contiguous"
    step = ("decode (1 new token per sequence)" if scenario.q_len == 1
            else f"speculative verify ({scenario.q_len} new tokens per sequence)")
    return f"TP {tp} · q/o {scenario.dtype} · KV cache {kv}, {layout} · {step}"


def compared_fact(results) -> str:
    """Beside the scenario's strategies: the planner, and which baselines were modelled where."""
    s, left_out = results.scenario, results.left_out or {}
    text = (f"beside them <code>auto</code>, the planner's choice (its plan named in the tables), and the "
            f"PyTorch SDPA baselines modelled where they run the case")
    notes = [f"{h.esc(name)} left out of {sum(reasons.values())} of {len(s.cases())} cases ("
             + "; ".join(h.esc(r) for r in reasons) + ")" for name, reasons in left_out.items()]
    return text + (": " + "; ".join(notes) if notes else "")


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
        f"{len(s.strategies)} strategies ({h.esc(', '.join(s.strategies))}) on {len(s.gpus)} GPU profile(s); "
        + compared_fact(results),
        f"Serving settings: {h.esc(serving_settings(s))}; times are per attention layer on one GPU, "
        "and per decode step through all layers where the model's layer count is known",
    ]
    parts = [h.para(h.esc(s.description)) if s.description else "", h.bullet_list(facts, "facts"),
             h.table(shapes_table(s), "Attention shapes")]
    if s.ragged:
        parts.append(h.table(ragged_table(s), "Ragged-batch generators"))
    return "modelled", "What was modelled", "".join(parts)
