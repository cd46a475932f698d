"""Error bands: how far a prediction may be from the measurement, from measured residuals of its regime.

A band is a range of the signed relative error e = predicted / measured - 1 (in %), looked up by
the regime of a prediction: the attention launch's cost family x the KV-cache size bin (edges
KV_EDGES_BYTES) x where the profile comes from. So a predicted time t says the measured time lies in
[t / (1 + hi), t / (1 + lo)] with the band's confidence (5th-95th percentile of the residuals).

Where bands come from (the profile's `error_bands`, written by attnsim/validation/bands.py):
- calibrated profiles: residuals of the calibration set and the validation sweep on that GPU
  (coverage checked by cross-validation over workloads, reported in the profile);
- transferred profiles: residuals of the same transfer validated against another GPU's sweep (the
  source profile's `transfer_bands`), widened by the extra margin of another architecture;
- datasheet figures: DATASHEET_BAND_PCT, unmeasured and wide (a datasheet H200 was 34.5% off).
"""

from __future__ import annotations

import bisect

from attnsim.simulator import mla

KV_EDGES_BYTES = (16e6, 64e6, 256e6, 1e9, 4e9)  # bins: < 16 MB, 16-64 MB, 64-256 MB, 256 MB-1 GB, 1-4 GB, > 4 GB
BIN_LABELS = ("<16MB", "16-64MB", "64-256MB", "256MB-1GB", "1-4GB", ">4GB")
DATASHEET_BAND_PCT = (-40.0, 60.0)
UNKNOWN_FAMILY_BAND_PCT = (-15.0, 15.0)  # a family the bands were not measured for
OTHER_ARCH_MARGIN_PCT = 20.0  # added on both sides for a transfer to another compute capability


def kv_bin(kv_bytes: float) -> int:
    return bisect.bisect_right(KV_EDGES_BYTES, kv_bytes)


def measured_family(families: dict, family: str) -> str | None:
    """The key of `families` whose residuals describe `family`: itself, else its base family
    ('flashdecoding-combine' -> 'flashdecoding'); an MLA kernel's family only itself (another kernel:
    until a device sweep measures it, its predictions are unmeasured)."""
    if family in families:
        return family
    base = family.split("-")[0]
    return base if base in families and mla.FAMILY_SUFFIX not in family else None


def band(error_bands: dict, family: str, kv_bytes: float, profile_source: str) -> tuple[float, float]:
    """(lo, hi) % of predicted / measured - 1 for a prediction of `family` reading `kv_bytes`
    (an unmeasured MLA family: DATASHEET_BAND_PCT, as unmeasured as datasheet figures)."""
    families = (error_bands or {}).get("families", {})
    if profile_source == "datasheet" or not families:
        return DATASHEET_BAND_PCT
    key = measured_family(families, family)
    if key is None:
        return DATASHEET_BAND_PCT if mla.FAMILY_SUFFIX in family else UNKNOWN_FAMILY_BAND_PCT
    rows = families[key]
    if not rows:
        return UNKNOWN_FAMILY_BAND_PCT
    lo, hi = rows[min(kv_bin(kv_bytes), len(rows) - 1)]
    return float(lo), float(hi)


def widen(error_bands: dict, margin_pct: float, basis: str) -> dict:
    """Bands with `margin_pct` added on both sides of every regime (a transfer to another architecture)."""
    families = {f: [[lo - margin_pct, hi + margin_pct] for lo, hi in rows]
                for f, rows in (error_bands or {}).get("families", {}).items()}
    return {**(error_bands or {}), "families": families, "basis": basis}


def measured_range_us(time_us: float, lo_pct: float, hi_pct: float) -> tuple[float, float]:
    """Where the measured time lies if the prediction's error is within [lo, hi] %."""
    return time_us / (1 + hi_pct / 100), time_us / (1 + lo_pct / 100)
