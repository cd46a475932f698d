"""Model-guided tuning on the device: `auto:tune=K` times the model's K fastest predicted plans (and the
batch-invariant plan) and runs the fastest measured one; `auto:batch_invariant=1,tune=K` runs its shape's fixed
rule measured best among the model's K best (bench/tune_invariant.tuned_rule, once per shape).

    launcher, trials = tuned_launcher("auto:tune=3", w, q, k, v, ref, config, prepare, run_kwargs)

The model ranks every candidate plan (planner/search.py); within its error band (2-6% on the oracle
studies) it cannot order near-equal plans, and that is where its picks lose (docs/planner.md). Timing the K
plans it ranks fastest, and the batch-invariant plan (split-KV's chunked kernel, which the model prices like
the split kernel: planner/choose.tuning_specs), settles those ties by measurement, as Triton's autotuner does
with a performance model pruning its configurations. On the H100's oracle study (136 workloads, measured,
docs/planner.md "Model-guided tuning") regret vs the best measured plan fell from 2.51 / 12.65 / 15.97% (mean
/ p95 / max, `auto`) to 0.77 / 2.92 / 6.97% (`auto:tune=3`).

Each candidate is checked against the float64 reference first (a plan that fails is never run) and timed
with the row's own timer; ties within TIE_PCT go to the model's order. The caller (harness.bench_one)
checks and times the chosen launcher again, so the row's time is a fresh measurement of one plan, not the
least of K noisy ones. `trials` records what was timed: 'splitkv:splits=28 23.1; ...' (µs), the CSV's
`tuned` column.
"""

from __future__ import annotations

from typing import Callable

from attnsim.bench import measure

TIE_PCT = 0.5  # measured within this of the fastest: the model's earlier-ranked plan runs (timer noise ~0.2%)


def planner_options(spec: str) -> dict:
    """The options set on a spec of the planner's entry ({'tune': 3, ...}); {} for any other entry."""
    from attnsim.plans.spec import parse_plan_spec

    strategy, options = parse_plan_spec(spec)
    return options.set() if strategy.planned else {}


def plans_timed(spec: str) -> int:
    """The plans `auto:tune=K` times before the row's own timing (at most K + 1: the batch-invariant plan
    too, planner/choose.tuning_specs); 0 for any other spec."""
    count = int(planner_options(spec).get("tune") or 0)
    return count + 1 if count else 0


def invariant(spec: str) -> bool:
    """Whether `spec` asks for the batch-invariant rule measured per shape (`auto:batch_invariant=1,tune=K`)."""
    return tuned(spec) and bool(planner_options(spec).get("batch_invariant"))


def tuned(spec: str) -> bool:
    """Whether `spec` asks for device tuning (`auto:tune=K`)."""
    return plans_timed(spec) > 0


def tuned_launcher(spec: str, w, q, k, v, ref, config, prepare: Callable, run_kwargs: dict | None = None,
                   run_sweep: Callable | None = None):
    """(launcher of the fastest measured plan among the model's K fastest, trials text). Raises the last
    candidate's error when none of them runs correctly. run_sweep: harness.run_sweep, which times a batch-invariant
    spec's rules on its shape's grid."""
    from attnsim.bench import tune_invariant
    from attnsim.planner.choose import tuning_specs

    if invariant(spec):  # the shape's fixed rule, measured on its own grid (not this row's batch)
        rule, text = tune_invariant.tuned_rule(spec, w, config, prepare, run_sweep)
        return prepare(rule, w, config), text
    run_kwargs = run_kwargs or {}
    measured, notes, failure = [], [], None
    for rank, plan in enumerate(tuning_specs(spec, w, config.gpu)):
        try:
            launcher = prepare(plan, w, config)
            err, out = measure.checked_run(launcher, w, q, k, v, ref, run_kwargs)
            if not err <= config.rel_tol:
                notes.append(f"{plan} wrong")
                continue
            t_us = measure.timed_us(lambda launcher=launcher, out=out: launcher.run(q, k, v, out=out, **run_kwargs),
                                    config.timer)
        except Exception as exc:  # a candidate that cannot run is skipped, not the row's failure
            failure = exc
            notes.append(f"{plan} {type(exc).__name__}")
            continue
        measured.append((t_us, rank, plan, launcher))
        notes.append(f"{plan} {t_us:.2f}")
    if not measured:
        raise failure or RuntimeError(f"no plan of {spec} ran correctly ({'; '.join(notes)})")
    return pick(measured)[3], "; ".join(notes)


def pick(measured: list[tuple]):
    """The entry (time_us, model rank, ...) that runs: the model's earliest-ranked plan within TIE_PCT of the
    fastest measured."""
    fastest = min(t for t, *_ in measured)
    return min((m for m in measured if m[0] <= fastest * (1 + TIE_PCT / 100)), key=lambda m: m[1])
