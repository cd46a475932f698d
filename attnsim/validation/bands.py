"""Error bands from measured residuals (written into profiles; looked up by attnsim.simulator.bands).

For every cost family (of the attention launch) and KV-size bin: the 5th and 95th percentiles of the
signed error 100 x (predicted / measured - 1) over the measured rows; a bin with fewer than
MIN_BIN_POINTS rows takes its family's percentiles, and every band is at least +/- MIN_HALF_WIDTH_PCT.

Coverage (the share of measurements inside their band) is estimated by K-fold cross-validation over
workloads: bands built without one fold, checked on it. In-sample bands of a calibration alone cover
less out of sample (about 0.77 on the H100 and H200 sweeps at nominal 0.90, the calibration set
being smaller and shaped differently), so `calibrate` widens them by IN_SAMPLE_WIDENING, measured on
those two GPUs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from attnsim.simulator.bands import KV_EDGES_BYTES, kv_bin

LOW_PCT, HIGH_PCT = 5.0, 95.0
MIN_BIN_POINTS = 8
MIN_HALF_WIDTH_PCT = 1.0
IN_SAMPLE_WIDENING = 1.3
WORKLOAD_KEY = ["batch", "q_heads", "kv_heads", "head_dim", "context", "dtype"]


def error_bands(rows: pd.DataFrame, basis: str, widen: float = 1.0) -> dict:
    """Bands from rows with family, kv_bytes and pct_error (validation.compare.predict_measurements),
    and from the same residuals the expected error of each regime (its MAPE, x widen)."""
    families, expected = {}, {}
    for family, group in rows.groupby("family"):
        bins = group["kv_bytes"].map(kv_bin)
        per_bin = [group["pct_error"][bins == b] if (bins == b).sum() >= MIN_BIN_POINTS else group["pct_error"]
                   for b in range(len(KV_EDGES_BYTES) + 1)]  # a thin bin takes its family's residuals
        families[family] = [[round(min(lo, -MIN_HALF_WIDTH_PCT) * widen, 2), round(max(hi, MIN_HALF_WIDTH_PCT) * widen, 2)]
                            for lo, hi in map(_percentiles, per_bin)]
        expected[family] = [round(float(e.abs().mean()) * widen, 2) for e in per_bin]
    return {"edges_bytes": list(KV_EDGES_BYTES), "families": families, "expected_pct": expected,
            "mape_pct": round(float(rows["pct_error"].abs().mean()) * widen, 2), "basis": basis,
            "percentiles": [LOW_PCT, HIGH_PCT], "points": int(len(rows))}


def _percentiles(errors: pd.Series) -> tuple[float, float]:
    return float(np.percentile(errors, LOW_PCT)), float(np.percentile(errors, HIGH_PCT))


def covered(rows: pd.DataFrame, bands: dict) -> np.ndarray:
    """Whether each row's error lies inside its regime's band."""
    from attnsim.simulator.bands import band

    limits = [band(bands, f, kv, "calibrated") for f, kv in zip(rows["family"], rows["kv_bytes"])]
    err = rows["pct_error"].to_numpy()
    return np.array([lo <= e <= hi for e, (lo, hi) in zip(err, limits)])


def cv_coverage(always: pd.DataFrame, folded: pd.DataFrame, folds: int = 5, seed: int = 0) -> float:
    """K-fold coverage: bands from `always` + all folds of `folded` but one, checked on that one."""
    keys = folded[WORKLOAD_KEY].astype(str).agg("|".join, axis=1)
    unique = np.random.default_rng(seed).permutation(sorted(set(keys)))
    fold_of = {k: i % folds for i, k in enumerate(unique)}
    fold = keys.map(fold_of)
    hits = [covered(folded[fold == f], error_bands(pd.concat([always, folded[fold != f]]), "cv"))
            for f in range(folds)]
    return float(np.concatenate(hits).mean())
