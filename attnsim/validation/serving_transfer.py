"""Carry one GPU's fitted serving terms to another GPU of the same die, term by term, checked on that GPU's
own serving rows (scripts/serving_fit.py --same-die).

The H100 and the H200 are one GH100 die (132 SMs, the same clocks) running the same kernels; only the HBM
differs. The serving terms (simulator/terms.py) are per-SM-clock rates of the tile loop (mma, fp8
conversions), fixed µs per paged tile or fp8 segment, and a ratio of L2 latencies: properties of the die
and the kernels, not of the memory. So the H200's fit (validation/serving_fit.py) is offered to the H100,
one (family, term) at a time, and kept where the H100's measured serving rows that use it (every row of
results/h100/{cal_serving,cal_fp8,bench_paged,bench_fp8,bench_qlen}.csv that has one: none of them fitted on
anything) are predicted better than with the term at its default (MAPE); otherwise the term stays at its
default and the profile says why. The error bands of the serving regimes are those rows' residuals (the
same rows chose which terms to carry: a choice of at most one bit per term, not a fit of their values).

    spec, table = carry_to_same_die(target_rows, target_base, source_fits, "the H200")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.terms import TERMS, regimes_of, terms_used
from attnsim.validation import serving_bands
from attnsim.validation import serving_fit as sf

STATUS = "transferred"
# the serving sweeps' files -> their sweep names (serving_fit: a regime sweep keeps its regime's rows)
SWEEP_FILES = {"cal_serving": sf.CAL_SWEEP, "cal_fp8": sf.CAL_FP8_SWEEP, **{f"bench_{s}": s for s in sf.SWEEPS}}


def load_rows(results_dir: str | Path, spec: GpuSpec) -> sf.Rows:
    """Every row that uses a serving term in the serving sweeps found in `results_dir` (cal_serving.csv and
    bench_<regime>.csv; a regime sweep's feature rows), none fitted; FileNotFoundError when the folder has
    none of those files."""
    parts = [sf.planned_rows(Path(results_dir) / f"{name}.csv", spec, sweep, fit=False)
             for name, sweep in SWEEP_FILES.items() if (Path(results_dir) / f"{name}.csv").exists()]
    if not parts:
        raise FileNotFoundError(f"{results_dir}: no serving sweep ({', '.join(SWEEP_FILES)}.csv)")
    return sf.Rows.joined(parts)


def using(rows: sf.Rows, family: str, term: str) -> np.ndarray:
    """Rows whose plan runs (or prices its tile math as) `family` and whose workload uses `term`."""
    return sf.uses(rows.frame, family).to_numpy() & np.array([term in terms_used(p.workload) for p in rows.points])


def carry_to_same_die(rows: sf.Rows, base: GpuSpec, fits: list[sf.FamilyFit], source: str) -> tuple[GpuSpec, dict]:
    """(`base` with each kept term of `fits` carried where `rows` predict better with it, the serving_terms
    table). `base`: the target GPU's profile with the families' serving fields at their defaults
    (sf.at_defaults); terms are offered in passes until none is taken (one may only pay once another is)."""
    spec, carried = base, {f.family: set() for f in fits}
    for _ in TERMS:
        taken = False
        for fit in fits:
            for term in (t for t in TERMS if (t in fit.terms or t in fit.carried) and t not in carried[fit.family]):
                trial = with_term(spec, fit.family, term, fit.params)
                mask = using(rows, fit.family, term)
                if mask.any() and sf.mape(rows, trial, mask) < sf.mape(rows, spec, mask):
                    spec, taken = trial, True
                    carried[fit.family].add(term)
        if not taken:
            break
    return spec, table(rows, spec, base, carried, source)


def with_term(spec: GpuSpec, family: str, term: str, source) -> GpuSpec:
    """`spec` with `family`'s fields of `term` taken from `source` (CostParams)."""
    return sf.with_params(spec, family, sf.with_term(spec.cost_for(family), term, source))


def table(rows: sf.Rows, spec: GpuSpec, base: GpuSpec, carried: dict, source: str) -> dict:
    """The serving_terms table: carried terms `transferred` (each with the MAPE of the rows that use it, as
    shipped and with it alone at its default), the rest `default`; bands from the rows' residuals with `spec`."""
    never = {"status": "default", "basis": f"neutral default (CostParams): {source}'s fit did not predict "
                                           "this GPU's measured serving rows better, or it kept none"}
    terms = {}
    for family, taken in carried.items():
        terms[family] = {}
        for term in TERMS:
            if term not in taken:
                terms[family][term] = never
                continue
            mask = using(rows, family, term)
            alone = sf.mape(rows, with_term(spec, family, term, base.cost_for(family)), mask)
            terms[family][term] = {"status": STATUS, "basis": (
                f"{source}'s fit carried (same die and kernels): this GPU's {int(mask.sum())} measured serving "
                f"rows that use it, MAPE {sf.mape(rows, spec, mask):.2f}% as shipped, {alone:.2f}% with it at its default")}
    scored = sf.scored_points(rows.points, spec).assign(regimes=[regimes_of(p.workload) for p in rows.points])
    basis = (f"residuals of this GPU's measured serving rows ({len(rows.points)}: "
             f"{', '.join(sorted(set(rows.frame['sweep'])))}) with the terms as shipped")
    return {"terms": terms, "bands": {"basis": basis, "regimes": serving_bands.regime_bands(scored)}}
