"""Fit the serving cost terms on the `cal-serving` sweep, decode costs frozen, scored on the validation sweeps.

`attnsim bench --sweep cal-serving` (results/<gpu>/cal_serving.csv, issue 18) was built for fitting:
every page size, fp8 paged and not, q_len 2..16, and none of its workloads in the validation sweeps
(results/<gpu>/bench_{paged,fp8,qlen}.csv, issue 13; `check_disjoint`). So:

- the fit takes every row of cal_serving.csv (all of them use a serving term) and nothing else;
- the held-out score takes every feature row of the three validation sweeps (paged / fp8 / q_len > 1;
  their contiguous-decode twins use no serving term), none of them fitted;
- per cost family (the family of the plan each row ran, `auto`'s rows included: split-KV is fitted on
  the plans `auto` launched), only the SERVING fields, from their defaults, every decode field frozen
  (issue 13's joint refit moved the decode costs and worsened the standard sweep 2.9 -> 4.2%);
- a term is kept only if the held-out MAPE of the family's rows in the sweeps whose rows use it (JUDGE:
  their mean) improves on the defaults, and on the same fit with that term alone put back to its defaults
  (idle_terms: two terms judged on one sweep cannot keep each other); the others go back to their defaults
  and the rest is refitted, until every kept term improves its sweep. What ships is what held out better;
  what did not stays at its default and says so in the profile's provenance;
- a family that runs another's tile loop (SAME_TILE_LOOP: split-KV runs FlashDecoding's) takes the donor's
  fit of a term it did not keep itself where that holds out better than the default (carry_terms; the
  profile says "carried" and from whom);
- the per-warp rates (PER_WARP: the per-CTA limit beside the per-SM tile math, cost.cta_math_rate) refine
  the terms they sit in: a family keeps them only if its held-out fp8 and qlen rows (mean MAPE) improve on
  the same fit with them at 0 (no per-CTA limit), the fit every profile before them shipped.

`serving_table` turns the outcome into the profile's `serving_terms` table (simulator/terms.py):
each family's terms with their status and basis, and the error bands of each serving regime from
the held-out residuals of the profile as shipped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.simulator.engine import simulate
from attnsim.simulator.hardware import DEFAULT_COST, CostParams, GpuSpec
from attnsim.simulator.terms import PER_WARP_FIELDS, REGIMES, TERMS
from attnsim.validation import serving_bands
from attnsim.validation.compare import asked_strategy
from attnsim.validation.fit import fit_points
from attnsim.validation.measurements import MeasuredPoint, load_measurements, measured_points

SWEEPS = tuple(REGIMES)  # paged, fp8, qlen: bench_<sweep>.csv, whose feature rows are that regime's
CAL_SWEEP = "cal-serving"  # cal_serving.csv: the fitted rows
CAL_FP8_SWEEP = "cal-fp8"  # cal_fp8.csv, where measured: long fp8 streams (bench/sweep.py), fitted with them
# The held-out sweeps whose rows use each term: tile math caps fp8 rows too (cost.math_capped), so a fit
# that drops it must not pass on verify rows alone while its fp8 rows, priced with the dequant rate fitted
# beside it, get worse
JUDGE = {"paging": ("paged", "fp8"), "tile-math": ("qlen", "fp8"), "fp8-dequant": ("fp8",), "l2-siblings": ("qlen",)}


def judged(mape: dict[str, float], term: str) -> float:
    """Mean held-out MAPE % over the sweeps that judge `term` (those with rows of the family)."""
    return float(np.nanmean([mape[s] for s in JUDGE[term]]))
PER_WARP = PER_WARP_FIELDS  # kept only if they improve (module docstring)
# Families that run another's tile loop (attend_range: same tile, warps and stages, on the same serving
# paths): a term their own few rows do not fit is tried at the donor's fit (carry_terms).
SAME_TILE_LOOP = strategies.SAME_TILE_LOOP
PER_WARP_JUDGES = ("fp8", "qlen")
PER_WARP_KEY = "per-warp limit"  # FamilyFit.dropped's entry when a family's per-warp rates stay at 0
WORKLOAD_KEY = ["batch", "q_heads", "kv_heads", "head_dim", "contexts", "dtype", "kv_dtype", "page_size", "q_len"]


@dataclass(frozen=True)
class Rows:
    """The serving rows, planned: `frame` (sweep, fit, strategy, requested, family, time_us, ...) row by
    row with `points`; `fit` marks the cal-serving rows, the others are held out."""

    frame: pd.DataFrame
    points: list[MeasuredPoint]

    def where(self, mask) -> list[MeasuredPoint]:
        return [p for p, m in zip(self.points, np.asarray(mask)) if m]

    @staticmethod
    def joined(parts: list[tuple[pd.DataFrame, list[MeasuredPoint]]]) -> "Rows":
        """One Rows of planned_rows' parts, in their order."""
        return Rows(pd.concat([f for f, _ in parts], ignore_index=True), [p for _, pts in parts for p in pts])


@dataclass(frozen=True)
class FamilyFit:
    family: str
    terms: tuple[str, ...]  # kept: their fields ship
    params: CostParams  # the family's parameters with the kept terms fitted, the others at defaults
    dropped: dict  # term -> why it stays at its default
    iterations: int
    carried: dict = dataclasses.field(default_factory=dict)  # term -> basis: another family's fit (carry_terms)


def load_rows(results_dir: str | Path, spec: GpuSpec) -> Rows:
    """Every row of cal_serving.csv and, where measured, cal_fp8.csv (fitted) and the feature rows of
    bench_<sweep>.csv for every sweep (held out), each marked with its sweep, the strategy it asked for and the
    cost family it ran."""
    results_dir = Path(results_dir)
    parts = [planned_rows(results_dir / "cal_serving.csv", spec, CAL_SWEEP, fit=True)]
    if (results_dir / "cal_fp8.csv").exists():
        parts.append(planned_rows(results_dir / "cal_fp8.csv", spec, CAL_FP8_SWEEP, fit=True))
    parts += [planned_rows(results_dir / f"bench_{sweep}.csv", spec, sweep, fit=False) for sweep in SWEEPS]
    rows = Rows.joined(parts)
    check_disjoint(rows.frame)
    return rows


def planned_rows(path: Path, spec: GpuSpec, sweep: str, fit: bool) -> tuple[pd.DataFrame, list[MeasuredPoint]]:
    """A sweep's rows that use a serving term (its regime's, for a validation sweep), planned."""
    frame = load_measurements(path)
    points = measured_points(frame, spec)
    member = REGIMES.get(sweep, lambda w: any(r(w) for r in REGIMES.values()))
    keep = [member(p.workload) for p in points]
    rows = frame[keep].assign(sweep=sweep, fit=fit)
    points = [p for p, k in zip(points, keep) if k]
    rows = rows.assign(requested=asked_strategy(rows).to_numpy(),
                       family=[p.plan.schedule.attention.family for p in points],
                       math_family=[p.plan.schedule.attention.math_family or p.plan.schedule.attention.family
                                    for p in points])
    return rows, points


def uses(frame: pd.DataFrame, family: str) -> pd.Series:
    """The rows whose plan runs `family`'s attention launch or prices its tile math with `family`'s rates
    (Launch.math_family: split-KV runs FlashDecoding's tile loop)."""
    return (frame["family"] == family) | (frame["math_family"] == family)


def workload_keys(frame: pd.DataFrame) -> pd.Series:
    return frame[[c for c in WORKLOAD_KEY if c in frame.columns]].astype(str).agg("|".join, axis=1)


def check_disjoint(frame: pd.DataFrame) -> None:
    """The fitted workloads are none of the held-out ones (else the held-out score is not one)."""
    keys = workload_keys(frame)
    shared = set(keys[frame["fit"]]) & set(keys[~frame["fit"]])
    if shared:
        raise InputError("measurements", f"{len(shared)} cal-serving workload(s) also in the validation sweeps, "
                                         f"e.g. {sorted(shared)[0]}")


def at_defaults(spec: GpuSpec, families) -> GpuSpec:
    """`spec` with the serving fields of `families` at their CostParams defaults (the unfitted profile)."""
    neutral = {name: getattr(DEFAULT_COST, name) for term in TERMS.values() for name in term.fields}
    return dataclasses.replace(spec, cost={**spec.cost, **{f: dataclasses.replace(spec.cost_for(f), **neutral)
                                                           for f in families}})


def pct_errors(points: list[MeasuredPoint], spec: GpuSpec) -> np.ndarray:
    """100 x (predicted / measured - 1) per point."""
    predicted = np.array([simulate(p.plan.schedule, spec).total_us for p in points])
    return (predicted / np.array([p.time_us for p in points]) - 1) * 100


def mape(rows: Rows, spec: GpuSpec, mask) -> float:
    """MAPE % of the rows where `mask` holds, predicted with `spec`."""
    return float(np.abs(pct_errors(rows.where(mask), spec)).mean())


def held_out_mape(rows: Rows, spec: GpuSpec, family: str) -> dict[str, float]:
    """{sweep: MAPE %} of the held-out feature rows whose plan ran `family` (nan where none did)."""
    out = {}
    for sweep in SWEEPS:
        mask = (rows.frame["sweep"] == sweep) & uses(rows.frame, family)
        out[sweep] = mape(rows, spec, mask) if mask.any() else float("nan")
    return out


def fit_family(rows: Rows, base: GpuSpec, family: str) -> FamilyFit:
    """Fit `family`'s serving terms, with the per-warp rates where they hold out better than without
    (module docstring)."""
    without = fit_terms(rows, base, family, frozen=PER_WARP)
    with_per_warp = fit_terms(rows, base, family)
    scores = [per_warp_score(rows, base, fit) for fit in (without, with_per_warp)]
    if scores[1] < scores[0]:
        return with_per_warp
    why = f"held-out {'/'.join(PER_WARP_JUDGES)} MAPE {scores[0]:.2f}% without, {scores[1]:.2f}% with: no better"
    return dataclasses.replace(without, dropped={**without.dropped, PER_WARP_KEY: why})


def per_warp_score(rows: Rows, base: GpuSpec, fit: FamilyFit) -> float:
    """Mean held-out MAPE % of the family's fp8 and qlen rows with `fit` on `base`."""
    mape = held_out_mape(rows, with_fits(base, [fit]), fit.family)
    return float(np.nanmean([mape[s] for s in PER_WARP_JUDGES]))


def fit_terms(rows: Rows, base: GpuSpec, family: str, frozen: tuple[str, ...] = ()) -> FamilyFit:
    """Fit `family`'s serving fields (less `frozen`, held at `base`'s) on its cal-serving rows, keeping
    only the terms whose judge sweep's held-out rows improve (see the module docstring)."""
    train = rows.where(rows.frame["fit"] & uses(rows.frame, family))
    before = held_out_mape(rows, base, family)
    terms, dropped = tuple(TERMS), {}
    while terms:
        free = {family: tuple(name for t in terms for name in TERMS[t].fields if name not in frozen)}
        result = fit_points(train, base, free=free)
        after = held_out_mape(rows, result.spec, family)
        worse = {t: f"held-out {'/'.join(JUDGE[t])} MAPE {judged(before, t):.2f}% at defaults, "
                    f"{judged(after, t):.2f}% fitted: no better" for t in terms if not judged(after, t) < judged(before, t)}
        worse = worse or idle_terms(rows, result.spec, family, terms, after)
        if not worse:
            return FamilyFit(family, terms, result.spec.cost_for(family), dropped, result.iterations)
        dropped.update(worse)
        terms = tuple(t for t in terms if t not in worse)
    return FamilyFit(family, (), base.cost_for(family), dropped, 0)


def idle_terms(rows: Rows, fitted: GpuSpec, family: str, terms: tuple[str, ...], after: dict) -> dict[str, str]:
    """The fitted terms that hold out no better than their defaults with the other terms as fitted (each
    term's own contribution: terms judged on the same sweep could otherwise ride along on another's gain)."""
    idle = {}
    for term in terms if len(terms) > 1 else ():
        params = with_term(fitted.cost_for(family), term, DEFAULT_COST)
        alone = held_out_mape(rows, with_params(fitted, family, params), family)
        if not judged(after, term) < judged(alone, term):
            idle[term] = (f"held-out {'/'.join(JUDGE[term])} MAPE {judged(alone, term):.2f}% with it at its defaults "
                          f"and the other terms fitted, {judged(after, term):.2f}% fitted: it adds nothing")
    return idle


def with_term(params: CostParams, term: str, source: CostParams) -> CostParams:
    """`params` with the fields of serving term `term` taken from `source`."""
    return dataclasses.replace(params, **{n: getattr(source, n) for n in TERMS[term].fields})


def with_params(spec: GpuSpec, family: str, params: CostParams) -> GpuSpec:
    return dataclasses.replace(spec, cost={**spec.cost, family: params})


def carry_terms(rows: Rows, base: GpuSpec, fits: list[FamilyFit]) -> list[FamilyFit]:
    """Each fit of a family in SAME_TILE_LOOP with the donor's fitted fields of every term it did not keep
    itself, where that holds out better (the term's judge sweeps, the family's held-out rows) than its default."""
    donors = {f.family: f for f in fits}
    out = []
    for fit in fits:
        donor = donors.get(SAME_TILE_LOOP.get(fit.family, ""))
        for _ in TERMS if donor else ():  # passes: a term may hold out better once another is carried
            untried = [t for t in donor.terms if t not in fit.terms and t not in fit.carried]
            carried = fit.carried
            for term in untried:
                fit = carry_one(rows, base, fit, donor, term)
            if fit.carried == carried:
                break
        out.append(fit)
    return out


def carry_one(rows: Rows, base: GpuSpec, fit: FamilyFit, donor: FamilyFit, term: str) -> FamilyFit:
    """`fit` with `donor`'s fields of `term` if its judge sweeps' held-out rows of the family improve."""
    trial = dataclasses.replace(fit, params=with_term(fit.params, term, donor.params))
    before, after = (judged(held_out_mape(rows, with_fits(base, [f]), fit.family), term) for f in (fit, trial))
    if not after < before:
        return fit
    basis = (f"{donor.family}'s fit, the same tile loop (kernels/tiles.py): held-out {'/'.join(JUDGE[term])} "
             f"MAPE {before:.2f}% without, {after:.2f}% carried")
    return dataclasses.replace(trial, carried={**fit.carried, term: basis})


def fit_families(rows: Rows, base: GpuSpec, families: list[str]) -> list[FamilyFit]:
    """fit_family of each of `families` (in their order): first those whose rates other families' launches
    price their tile math with (lenders: FlashDecoding for split-KV), on `base`, then the others on `base`
    with the lenders' fits (fit_base): split-KV's rows weigh in FlashDecoding's fit of its rates and are
    priced at those rates' fitted values in their own."""
    lent = lenders(rows)
    fits = {f: fit_family(rows, base, f) for f in families if f in lent}
    fits.update({f: fit_family(rows, fit_base(base, list(fits.values()), f, lent), f) for f in families if f not in fits})
    return [borrowed_math(fits[f], fits.get(SAME_TILE_LOOP.get(f, ""))) for f in families]


def borrowed_math(fit: FamilyFit, lender: FamilyFit | None) -> FamilyFit:
    """`fit` whose tile-math term, when the family did not keep its own, is the lender's: its launches price
    their tile math at the lender's rates (Launch.math_family), so the profile records those fields and that
    provenance (carried), not its own unused defaults."""
    if lender is None or "tile-math" in fit.terms or "tile-math" not in lender.terms:
        return fit
    basis = f"{lender.family}'s fit: {BORROWED} {lender.family}'s rates (the same tile loop, Launch.math_family)"
    params = with_term(fit.params, "tile-math", lender.params)
    return dataclasses.replace(fit, params=params, carried={**fit.carried, "tile-math": basis})


BORROWED = "its launches price their tile math at"  # a carried term's basis when it is the lender's by construction


def lenders(rows: Rows) -> set[str]:
    """The families whose tile-math rates other families' launches borrow (Launch.math_family)."""
    frame = rows.frame
    return set(frame.loc[frame["math_family"] != frame["family"], "math_family"])


def fit_base(base: GpuSpec, fits: list[FamilyFit], family: str, lent: set[str]) -> GpuSpec:
    """The spec `family` is fitted and judged on: `base`, with the lenders' fits unless it is one."""
    return base if family in lent else with_fits(base, [f for f in fits if f.family in lent])


def fitted_families(rows: Rows) -> list[str]:
    """The cost families the cal-serving rows ran, in order of first appearance."""
    return list(dict.fromkeys(rows.frame.loc[rows.frame["fit"], "family"]))


def with_fits(spec: GpuSpec, fits: list[FamilyFit]) -> GpuSpec:
    """`spec` with each fit's serving fields as a profile stores them (6 decimals: scripts/serving_fit.py),
    so that what is scored is what ships."""
    def as_stored(params):
        return dataclasses.replace(params, **{n: round(getattr(params, n), 6) for t in TERMS for n in TERMS[t].fields})
    return dataclasses.replace(spec, cost={**spec.cost, **{f.family: as_stored(f.params) for f in fits}})


def mape_table(rows: Rows, before: GpuSpec, after: GpuSpec) -> pd.DataFrame:
    """Held-out MAPE % per sweep x strategy asked for (fa2, flashdecoding, streamk, auto: whichever plan
    it ran): points, at defaults, fitted."""
    held = rows.frame[~rows.frame["fit"]]
    points = rows.where(~rows.frame["fit"])
    frame = held.assign(before=np.abs(pct_errors(points, before)), after=np.abs(pct_errors(points, after)))
    table = frame.groupby(["sweep", "requested"], sort=False).agg(points=("before", "size"), before=("before", "mean"),
                                                                  after=("after", "mean"))
    return table.round(2).reset_index().rename(columns={"requested": "strategy"})


def regime_bands(rows: Rows, spec: GpuSpec) -> dict:
    """{regime: {family: [[lo, hi] % per KV bin]}}: 5th-95th percentiles of the signed error of `spec`
    on each validation sweep's feature rows (never fitted); a sweep's feature rows are its regime's (fp8
    rows in pages count for the fp8 regime, as the sweep measured them)."""
    mask = ~rows.frame["fit"]
    scored = scored_points(rows.where(mask), spec)
    return serving_bands.regime_bands(scored.assign(regimes=[(sweep,) for sweep in rows.frame.loc[mask, "sweep"]]))


def scored_points(points: list[MeasuredPoint], spec: GpuSpec) -> pd.DataFrame:
    """family (of the attention launch), kv_bytes and pct_error of each point predicted with `spec`: what
    validation.bands.error_bands reads."""
    return pd.DataFrame({"family": [p.plan.schedule.attention.family for p in points],
                         "kv_bytes": [p.workload.kv_bytes() for p in points],
                         "pct_error": pct_errors(points, spec)})


def split_text(rows: Rows) -> str:
    """Which rows were fitted and which held out, as the profile's basis text says it."""
    counts = rows.frame.groupby("sweep", sort=False).size()
    held = "/".join(str(counts.get(s, 0)) for s in SWEEPS)
    fp8 = f" and {CAL_FP8_SWEEP} ({counts[CAL_FP8_SWEEP]} rows)" if CAL_FP8_SWEEP in counts else ""
    return (f"fitted on the H200 {CAL_SWEEP} sweep ({counts.get(CAL_SWEEP, 0)} rows, all its workloads){fp8}, "
            f"held out the feature rows of the validation sweeps {'/'.join(SWEEPS)} ({held} rows)")


def serving_table(fits: list[FamilyFit], bands: dict, split: str, band_basis: str) -> dict:
    """The profile's `serving_terms` table for the fitted families; other families read as defaults."""
    terms = {fit.family: _entries(fit, {"status": "fitted", "basis": split}) for fit in fits}
    return {"terms": terms, "bands": {"basis": band_basis, "regimes": bands}}


def _entries(fit: FamilyFit, kept: dict) -> dict:
    return {t: kept if t in fit.terms else {"status": "carried", "basis": fit.carried[t]} if t in fit.carried else
            {"status": "default", "basis": f"neutral default (CostParams): {fit.dropped.get(t, 'not fitted')}"}
            for t in TERMS}
