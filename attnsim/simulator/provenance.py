"""Per-term provenance of a prediction: which serving cost terms its plan uses, whether the profile
fitted them on this GPU, and the error band measured where they apply.

A decode row (contiguous KV of the query dtype, q_len 1) is what the decode calibration measured: it
keeps the profile's source ("calibrated") and its decode band (simulator/bands.py). A paged, fp8 or
verify row also uses serving terms (simulator/terms.py). Then
- `profile_source` names the terms that were not fitted on this GPU, e.g.
  "calibrated; fp8-dequant, tile-math terms at defaults" or "transferred; paging terms at defaults";
- its band is the one measured on the serving sweeps of its regimes (paged, fp8, qlen; the envelope
  when it is in several), never the decode band: the decode calibration says nothing about them. A
  profile without measured serving bands gives such rows the datasheet band (unmeasured, wide).
An MLA row (docs/mla.md) runs another kernel whose cost families stand in with its partitioning's
until a device sweep fits them (the H200's are fitted on cal_mla.csv; a profile without them takes the
H200's, transferred: profiles.complete_families): its label says so where they are not fitted on this GPU,
and its band is the `mla` regime's: the held-out residuals of the `mla` sweep where the profile
has them (scripts/mla_fit.py), else the datasheet band.

A padded head dim (96, 160-224: tiles at the next power of two, cost.py "Padded head dims") was never in a
calibration: its label says so, its band_regime gains "+padded" and its band is the envelope of its own and
PADDED_BAND_PCT, the 5th-95th percentile of the model's residuals on the H100's held-out padded sweeps.

A profile that does not record a term (written before the table existed) is read by value: fields at
the CostParams defaults were never fitted; others were fitted where the profile was (calibrated) or
carried with it (transferred).
"""

from __future__ import annotations

from dataclasses import dataclass

from attnsim.simulator import bands
from attnsim.simulator.hardware import DEFAULT_COST, GpuSpec
from attnsim.simulator.terms import MLA_REGIME, REGIMES, TERMS, regimes_of, terms_used

# What a profile's own kind calls a term it fitted itself: only other statuses are worth a word.
OWN_STATUS = {"calibrated": "fitted", "transferred": "transferred"}
STATUS_WORDS = {"default": "at defaults", "transferred": "transferred", "fitted": "fitted",
                "carried": "carried from a kernel with the same tile loop"}
NEVER_FITTED = "neutral default (CostParams); never fitted"
MLA_LABEL = "MLA kernel costs from its partitioning's (unfitted)"
# predicted / measured - 1, %: 5th-95th percentile over the 124 padded rows (every strategy, 32- and 64-token tiles)
# of results/h100/head_dim_pad.csv and pad_tiles.csv with the model as it is (tests/simulator/test_provenance.py
# recomputes it); same die as the H200, so carried there without a margin
PADDED_BAND_PCT = (-15.1, 7.1)
PADDED_LABEL = "padded head dim not in the calibration (validated on the H100's padded sweeps)"


@dataclass(frozen=True)
class RowProvenance:
    profile_source: str  # "calibrated", or "calibrated; paging terms at defaults"
    terms: dict | None  # {term: status} of the serving terms the plan uses; None for decode
    band_regime: str  # "decode", or the serving regimes whose measured bands were enveloped ("fp8+paged")
    band_pct: tuple[float, float]  # (lo, hi) % of predicted / measured - 1


def term_status(gpu: GpuSpec, family: str, term: str) -> dict:
    """{"status", "basis"} of one serving term of one cost family on this profile."""
    recorded = gpu.serving_terms.get("terms", {}).get(family, {}).get(term)
    if recorded:
        return recorded
    params = gpu.cost_for(family)
    untouched = all(getattr(params, f) == getattr(DEFAULT_COST, f) for f in TERMS[term].fields)
    if untouched or gpu.profile_source not in OWN_STATUS:
        return {"status": "default", "basis": NEVER_FITTED}
    return {"status": OWN_STATUS[gpu.profile_source], "basis": "not recorded in the profile (values differ "
                                                                "from the defaults)"}


def row_provenance(gpu: GpuSpec, family: str, workload, kv_bytes: float) -> RowProvenance:
    """Provenance and error band of a prediction whose attention launch is of cost `family`."""
    row = kernel_row_provenance(gpu, family, workload, kv_bytes)
    if not workload.pads_head_dim:
        return row
    band = (min(row.band_pct[0], PADDED_BAND_PCT[0]), max(row.band_pct[1], PADDED_BAND_PCT[1]))
    return RowProvenance(f"{row.profile_source}; {PADDED_LABEL}", row.terms, f"{row.band_regime}+padded", band)


def kernel_row_provenance(gpu: GpuSpec, family: str, workload, kv_bytes: float) -> RowProvenance:
    """row_provenance of the workload's power-of-two kernel: decode or its serving regimes."""
    used = terms_used(workload)
    if not used:
        return RowProvenance(gpu.profile_source, None, "decode",
                             bands.band(gpu.error_bands, family, kv_bytes, gpu.profile_source))
    statuses = {t: term_status(gpu, family, t)["status"] for t in used}
    regimes = serving_regimes(workload)
    mla_note = []
    if workload.is_mla and family not in gpu.cost:  # GpuSpec.cost_for's fallback (MLA families not fitted)
        mla_note = [MLA_LABEL]
    elif workload.is_mla and (donor := transferred_from(gpu, family)):
        mla_note = [f"MLA kernel costs transferred from {donor}"]
    label = "; ".join([source_label(gpu.profile_source, statuses)] + mla_note)
    return RowProvenance(label, statuses, "+".join(regimes), serving_band(gpu, family, regimes, kv_bytes))


def transferred_from(gpu: GpuSpec, family: str) -> str | None:
    """The preset whose profile `family`'s costs were taken from (GpuSpec.transferred, set by
    profiles.complete_families), else None."""
    return gpu.transferred.get(family)


def serving_regimes(workload) -> tuple[str, ...]:
    """The regimes whose measured bands a serving row takes (an MLA row: the mla regime's)."""
    return (MLA_REGIME,) if workload.is_mla else regimes_of(workload)


def source_label(profile_source: str, statuses: dict) -> str:
    """'calibrated; fp8-dequant, tile-math terms at defaults': the profile's kind, then every group of
    terms whose status is not what that kind means (a datasheet profile is datasheet throughout)."""
    own = OWN_STATUS.get(profile_source)
    if own is None:
        return profile_source
    parts = [f"{', '.join(t for t, s in statuses.items() if s == status)} terms {words}"
             for status, words in STATUS_WORDS.items() if status != own and status in statuses.values()]
    return "; ".join([profile_source, *parts])


def serving_band(gpu: GpuSpec, family: str, regimes, kv_bytes: float) -> tuple[float, float]:
    """The envelope of the bands measured on the serving sweeps of `regimes` (the datasheet band when
    one of them was never measured for this profile)."""
    measured = measured_serving_band(gpu, family, regimes, kv_bytes)
    return bands.DATASHEET_BAND_PCT if measured is None else measured


def measured_serving_band(gpu: GpuSpec, family: str, regimes, kv_bytes: float) -> tuple[float, float] | None:
    """serving_band where every regime was measured for this profile, else None."""
    if gpu.profile_source not in OWN_STATUS:
        return None
    tables = gpu.serving_terms.get("bands", {}).get("regimes", {})
    rows = [family_rows(tables.get(r, {}), family) for r in regimes]
    if any(r is None for r in rows):
        return None
    limits = [r[min(bands.kv_bin(kv_bytes), len(r) - 1)] for r in rows]
    return float(min(lo for lo, _ in limits)), float(max(hi for _, hi in limits))


def family_rows(regime_table: dict, family: str) -> list | None:
    """A family's band rows in one regime; a family the sweeps did not run (another plan of our kernels)
    takes the widest of the measured ones, bin by bin; None when the regime was not measured."""
    rows = regime_table.get(family) or regime_table.get(family.split("-")[0])
    if rows or not regime_table:
        return rows
    measured = list(regime_table.values())
    width = max(len(r) for r in measured)
    at = [[r[min(b, len(r) - 1)] for r in measured] for b in range(width)]
    return [[min(lo for lo, _ in pairs), max(hi for _, hi in pairs)] for pairs in at]


def transferred_table(table: dict, source_name: str, margin_pct: float = 0.0) -> dict:
    """The serving-terms table a transfer of a profile carries: fitted terms become `transferred`
    (their values are carried by transfer.RULES), defaults stay defaults; the measured serving bands
    carry with `margin_pct` points added on both sides (another architecture)."""
    terms = {family: {term: carried_entry(entry, source_name) for term, entry in entries.items()}
             for family, entries in table.get("terms", {}).items()}
    out = {"terms": terms} if terms else {}
    regimes = table.get("bands", {}).get("regimes")
    if regimes:
        widened = {r: {f: [[max(lo - margin_pct, -99.0), hi + margin_pct] for lo, hi in rows] for f, rows in fams.items()}
                   for r, fams in regimes.items()}
        basis = table["bands"].get("basis", "")
        out["bands"] = {"basis": f"{basis}; carried from {source_name}" + (f", +/-{margin_pct:g} points"
                                                                            if margin_pct else ""),
                        "regimes": widened}
    return out


def carried_entry(entry: dict, source_name: str) -> dict:
    if entry["status"] == "default":
        return entry
    return {"status": "transferred", "basis": f"{entry['basis']} (on {source_name}; carried by the transfer rules)"}


__all__ = ["REGIMES", "RowProvenance", "measured_serving_band", "row_provenance", "serving_regimes", "term_status",
           "transferred_table"]
