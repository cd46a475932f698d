"""A PlanResult as plain data (`attnsim plan --format json`, what a serving engine would consume;
the document around it: attnsim.schema) and as text. Times in µs, regrets in percent of the chosen plan's predicted time."""

from __future__ import annotations

from dataclasses import asdict

from attnsim import strategies

from attnsim.planner.search import Evaluated, PlanResult
from attnsim.planner.tieband import comparison_band, tie_band, uncertain
from attnsim.predict import floor_us, source_fields, workload_fields
from attnsim.simulator.provenance import row_provenance

RUNNERS_UP = 5


def plan_data(e: Evaluated) -> dict:
    """One plan: what to launch (strategy and options, and the same as a plan spec; per-launch grid
    and CTA shape). splits null: each output is cut its own way (attnsim.schema)."""
    return {"strategy": e.strategy, "options": dict(e.options), "spec": e.spec, "grid": e.grid,
            "splits": e.splits or None, "launches": [asdict(l) for l in e.launches], "time_us": round(e.time_us, 3),
            "achieved_gbps": round(e.achieved_gbps, 1), "bw_fraction": round(e.bw_fraction, 4), "bound": e.bound}


def same_plan(result: PlanResult, e: Evaluated) -> bool:
    """Whether `e` is the chosen plan, under its name or another (a rule's spec of the same concrete plan)."""
    return e is result.chosen or (e.concrete is not None and e.concrete == result.chosen.concrete)


def compared(result: PlanResult, e: Evaluated) -> dict:
    same = same_plan(result, e)
    return {"spec": e.spec, "time_us": round(e.time_us, 3), "regret_pct": round(result.regret_pct(e), 2),
            "tie": result.is_tie(e) and not same, "same_plan_as_choice": same}


def runners_up(result: PlanResult) -> list[Evaluated]:
    """The fastest other plans, then the best of each entry not among them."""
    top = [e for e in result.ranked if e is not result.chosen][:RUNNERS_UP]
    shown = {e.concrete for e in top} | {result.chosen.concrete}  # one row per concrete plan (search.distinct)
    return top + [e for e in result.entry_bests if e.concrete not in shown and e.strategy != result.chosen.strategy]


def baseline_verdict(result: PlanResult, e: Evaluated) -> str:
    """Ours vs a baseline, within the wider of both plans' tie bands; a baseline whose family's band
    is wide (or not calibrated) is named uncertain (planner.tieband)."""
    pct = 100.0 * (1.0 - e.time_us / result.chosen.time_us)
    w = result.workload
    band = comparison_band(result.gpu, result.chosen.family, e.family, w)
    doubt = (f"; uncertain: {e.strategy}'s error band here is +/-{tie_band(result.gpu, e.family, w)[0]:.0f}%"
             + (" (not calibrated)" if e.family in result.gpu.uncalibrated else "")
             if uncertain(result.gpu, e.family, w) else "")
    if pct <= 0:
        return f"ours is predicted {-pct:.0f}% faster" + ("; within the tie band" if -pct <= band else "") + doubt
    tie = "; ours within the tie band" if result.is_tie(e) or pct <= band else ""
    return f"{e.strategy} is predicted {pct:.0f}% faster here{tie}{doubt}"


def invariance_cost_pct(result: PlanResult) -> float:
    """How much slower the chosen plan is than the best without the batch-invariance restriction."""
    return 100.0 * (result.chosen.time_us / result.unconstrained.time_us - 1.0)


def plan_source(result: PlanResult) -> dict:
    """Where the chosen plan's numbers come from: the profile, and the serving terms it uses."""
    w = result.workload
    return source_fields(result.gpu, row_provenance(result.gpu, result.chosen.family, w, w.kv_bytes()))


def result_data(result: PlanResult) -> dict:
    chosen, unconstrained = result.chosen, result.unconstrained
    floor_time = floor_us(result.workload, result.gpu)
    return {
        "gpu": result.gpu.name, **plan_source(result), "workload": workload_fields(result.workload),
        "plan": plan_data(chosen), "why": result.why, "fastest": compared(result, result.fastest),
        "floor_us": round(floor_time, 3), "vs_floor": round(chosen.time_us / floor_time, 4),
        "tie_band_pct": round(result.tie_band_pct, 2), "tie_band_source": result.tie_band_source,
        "ties": [compared(result, e) for e in result.ties],
        "runners_up": [compared(result, e) for e in runners_up(result)],
        "heuristics": [{"name": h.name, "label": h.label, **compared(result, h.plan)} for h in result.heuristics],
        "baselines": [{"name": b.name, **compared(result, b.plan), "verdict": baseline_verdict(result, b.plan)}
                      for b in result.baselines],
        "baselines_not_modelled": [{"name": n, "reason": why} for n, why in baselines_left_out(result).items()],
        "batch_invariant": result.batch_invariant, **invariant_data(result),
        "unconstrained": compared(result, unconstrained), "invariance_cost_pct": round(invariance_cost_pct(result), 2),
        "search": {"candidates": result.generated, "simulated": result.simulated,
                   "elapsed_ms": round(result.elapsed_ms, 2)},
    }


def invariant_data(result: PlanResult) -> dict:
    """Batch-invariant mode: the fixed plan's grid regret, the floor of length rules, and what engines
    that take one fixed chunk or no split would get (percent over the grid, vs the unconstrained best)."""
    fixed = result.invariant
    if fixed is None:
        return {}
    def scored(s):
        return {"spec": s.spec, "mean_regret_pct": round(s.mean_pct, 2), "p95_regret_pct": round(s.p95_pct, 2),
                "max_regret_pct": round(s.max_pct, 2)}
    return {"invariant_plan": {**scored(fixed.chosen), "grid_points": fixed.points,
                               "length_rule_bound_pct": None if fixed.length_rule_bound_pct is None
                               else round(fixed.length_rule_bound_pct, 2),
                               "engine_rules": {k: scored(s) for k, s in fixed.engine_rules.items()}}}


def invariant_lines(result: PlanResult) -> list[str]:
    if result.invariant is None:
        return []
    return [f"  {label} instead: {s.spec}, {s.mean_pct:.1f}% mean regret over the same grid (max {s.max_pct:.0f}%)"
            for label, s in result.invariant.engine_rules.items()]


def baselines_left_out(result: PlanResult) -> dict[str, str]:
    """{baseline: why} for the modelled baselines that cannot run the workload (not compared)."""
    names = strategies.names(lambda s: s.baseline and s.predictable)
    return {n: why for n in names if (why := strategies.get(n).unsupported(result.workload))}


def _launches(e: Evaluated) -> str:
    return " + ".join(f"{l.name} {l.grid} CTAs x {l.threads} thr ({l.regs_per_thread} regs, "
                      f"{l.smem_bytes // 1024} KB smem)" for l in e.launches)


def _row(result: PlanResult, e: Evaluated, label: str = "") -> str:
    same = same_plan(result, e)
    tag = "  = the choice" if same and e.spec != result.chosen.spec else "  tie" if result.is_tie(e) and not same else ""
    return f"  {label:<26}{e.spec:<40}{e.time_us:>11.2f} µs {result.regret_pct(e):>+8.1f}%{tag}"


TUNE_HINT = 3  # the K the text suggests for auto:tune (the oracle studies': docs/planner.md "Model-guided tuning")


def result_text(result: PlanResult) -> str:
    w, c = result.workload, result.chosen
    floor_time = floor_us(w, result.gpu)
    ctx = f"ragged {w.batch}: {min(w.contexts)}..{max(w.contexts)}" if w.is_ragged else str(w.max_context)
    latent = f" (MLA: latent {w.kv_lora_rank} + {w.head_dim - w.kv_lora_rank})" if w.is_mla else ""
    lines = [f"{result.gpu.name} (profile: {plan_source(result)['profile_source']})  batch {w.batch}"
             f"  heads {w.q_heads}/{w.kv_heads}  d {w.head_dim}{latent}  context {ctx}  {w.dtype}"
             + (f" ({w.serving_label})" if w.serving_label else ""),
             f"chosen: {c.spec}  {c.time_us:.2f} µs  {c.achieved_gbps:.0f} GB/s = {c.bw_fraction:.2f} of HBM read"
             f"  ({c.bound}-bound)",
             f"  floor: {floor_time:.2f} µs, a pure read of its bytes under the bench's timer: "
             f"the choice is {c.time_us / floor_time:.2f}x it",
             f"  launches: {_launches(c)}",
             f"  why: {result.why}",
             f"tie band: {result.tie_band_pct:.1f}% ({result.tie_band_source})"]
    if result.ties and not result.batch_invariant:  # what the model cannot order, a GPU can (bench/tune.py)
        lines.append(f"  on a GPU: `bench --strategies auto:tune={TUNE_HINT}` times the {TUNE_HINT} fastest plans and "
                     f"the batch-invariant one, and runs the fastest measured")
    if result.batch_invariant:
        lines.append(f"batch-invariant: costs {invariance_cost_pct(result):+.1f}% vs the unconstrained choice "
                     f"{result.unconstrained.spec} ({result.unconstrained.time_us:.2f} µs)")
        lines += invariant_lines(result)
    lines.append("runners-up (regret vs the choice):")
    lines += [_row(result, e) for e in runners_up(result)]
    lines.append("heuristics:")
    lines += [_row(result, h.plan, h.name) for h in result.heuristics]
    if result.baselines:
        lines.append("third-party (modelled):")
        lines += [_row(result, b.plan, b.name) + f"  {baseline_verdict(result, b.plan)}" for b in result.baselines]
    lines += [f"not compared: {name}: {why}" for name, why in baselines_left_out(result).items()]
    lines.append(f"searched {result.generated} candidates, simulated {result.simulated}, {result.elapsed_ms:.1f} ms")
    return "\n".join(lines)
