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
- datasheet profiles: residuals of the first-principles model (simulator/datasheet.py) on the GPUs
  we have swept (attnsim/profiles/datasheet_bands.json), widened for another architecture; so are
  families a profile marks `uncalibrated`. DATASHEET_BAND_PCT only where no bands were measured at all
  (a hand-written GPU description with default costs).

One source of error: next to each band, `expected_pct` holds the mean absolute residual (MAPE) of the
same residuals, per family x bin, and `mape_pct` over all of them: the expected error a prediction
prints (`expected`) is that number of its regime, never a figure from elsewhere.
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
    ('flashdecoding-combine' -> 'flashdecoding', 'torch-cudnn-d64' -> 'torch'); an MLA kernel's family
    only itself (another kernel: until a device sweep measures it, its predictions are unmeasured)."""
    if family in families:
        return family
    base = family.split("-")[0]
    return base if base in families and mla.FAMILY_SUFFIX not in family else None


def _rows(table: dict, family: str):
    """A family's per-bin rows (measured_family's: never a default)."""
    key = measured_family(table, family)
    return table[key] if key is not None else None


def band(error_bands: dict, family: str, kv_bytes: float, profile_source: str = "calibrated") -> tuple[float, float]:
    """(lo, hi) % of predicted / measured - 1 for a prediction of `family` reading `kv_bytes` (an
    unmeasured MLA family: DATASHEET_BAND_PCT, as unmeasured as datasheet figures)."""
    families = (error_bands or {}).get("families", {})
    if not families:
        return DATASHEET_BAND_PCT
    rows = _rows(families, family)
    if not rows and mla.FAMILY_SUFFIX in family:
        return DATASHEET_BAND_PCT
    if not rows:
        return UNKNOWN_FAMILY_BAND_PCT
    lo, hi = rows[min(kv_bin(kv_bytes), len(rows) - 1)]
    return float(lo), float(hi)


def expected(error_bands: dict, family: str, kv_bytes: float, profile_source: str = "calibrated") -> float:
    """The expected |error| (%) of a prediction: the MAPE of the residuals its band was built from
    (bands without that table: the mean of the band's two bounds, from the same band)."""
    rows = _rows((error_bands or {}).get("expected_pct", {}), family)
    if rows:
        return float(rows[min(kv_bin(kv_bytes), len(rows) - 1)])
    lo, hi = band(error_bands, family, kv_bytes, profile_source)
    return (abs(lo) + abs(hi)) / 2.0


def widen(error_bands: dict, margin_pct: float, basis: str) -> dict:
    """Bands with `margin_pct` added on both sides of every regime (a transfer to another architecture),
    and to each regime's expected error."""
    bands = error_bands or {}
    families = {f: [[lo - margin_pct, hi + margin_pct] for lo, hi in rows] for f, rows in bands.get("families", {}).items()}
    out = {**bands, "families": families, "basis": basis}
    if "expected_pct" in bands:
        out["expected_pct"] = {f: [e + margin_pct for e in rows] for f, rows in bands["expected_pct"].items()}
    if bands.get("mape_pct") is not None:
        out["mape_pct"] = bands["mape_pct"] + margin_pct
    return out


def with_families(error_bands: dict, donor: dict, families) -> dict:
    """`error_bands` with the donor's rows (band and expected error) for `families` replacing its own."""
    out = {**(error_bands or {})}
    for key in ("families", "expected_pct"):
        extra = {f: rows for f, rows in (donor or {}).get(key, {}).items() if f in families}
        if extra or key in out:
            out[key] = {**out.get(key, {}), **extra}
    return out


def measured_range_us(time_us: float, lo_pct: float, hi_pct: float) -> tuple[float, float]:
    """Where the measured time lies if the prediction's error is within [lo, hi] %."""
    return time_us / (1 + hi_pct / 100), time_us / (1 + lo_pct / 100)
