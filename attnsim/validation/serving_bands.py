"""The serving half of a profile's provenance from scored measurements: which serving terms a fit set,
and the error bands of the serving regimes (simulator/terms.py), as `GpuSpec.serving_terms` holds them.

Scored rows are validation.compare.predict_measurements' output (family, kv_bytes, pct_error) with
`regimes`: the serving regimes of each row's workload (terms.regimes_of; empty for decode). A row
in two regimes (fp8 in pages) counts in both; decode rows in none.
"""

from __future__ import annotations

import pandas as pd

from attnsim.simulator.terms import REGIMES, TERMS, terms_used
from attnsim.validation.bands import error_bands
from attnsim.validation.measurements import row_workload


def with_regimes(rows: pd.DataFrame) -> pd.DataFrame:
    """Scored rows with their workloads' serving regimes and terms (tuples, empty for decode)."""
    workloads = [row_workload(r) for _, r in rows.iterrows()]
    regimes = [tuple(n for n, member in REGIMES.items() if member(w)) for w in workloads]
    return rows.assign(regimes=regimes, terms=[terms_used(w) for w in workloads])


def regime_note(basis: str, regime: str) -> tuple[str, str]:
    """(`basis` without `regime`'s note, the note "; <regime>: ..." or ""): a band table's basis is one text,
    the serving sweeps' first, then a note for a regime measured apart (the mla sweep: scripts/mla_fit.py)."""
    head, sep, tail = basis.partition(f"; {regime}:")
    return head, sep + tail


def regime_bands(scored: pd.DataFrame, widen: float = 1.0) -> dict:
    """{regime: {family: [[lo, hi] % per KV bin]}} of the rows in each regime (validation.bands'
    percentiles, bins and minimum width); regimes without rows are left out."""
    out = {}
    for regime in REGIMES:
        rows = scored[[regime in r for r in scored["regimes"]]]
        if not rows.empty:
            out[regime] = error_bands(rows, "", widen=widen)["families"]
    return out


def fitted_table(scored: pd.DataFrame, basis: str, band_basis: str, widen: float) -> dict:
    """serving_terms of a calibration whose points include serving rows: every (family, term) some
    point used was fitted (calibration fits the fields its points exercise: calibration.EXERCISED_BY),
    with in-sample regime bands widened by `widen`. {} when no point uses a serving term."""
    serving = scored[[bool(t) for t in scored["terms"]]]
    if serving.empty:
        return {}
    terms: dict = {}
    for family, rows in serving.groupby("family"):
        used = {t for ts in rows["terms"] for t in ts}
        count = {t: sum(t in ts for ts in rows["terms"]) for t in used}
        terms[family] = {t: {"status": "fitted", "basis": f"{basis}: fitted on {count[t]} calibration points "
                                                          "that use it"} for t in TERMS if t in used}
    return {"terms": terms, "bands": {"basis": band_basis, "regimes": regime_bands(serving, widen)}}
