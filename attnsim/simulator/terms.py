"""Serving cost terms: which CostParams fields a paged / fp8 / verify workload uses beyond decode, and
the profile table that says where each came from (`GpuSpec.serving_terms`).

Decode calibration (contiguous KV of the query dtype, q_len 1) never exercises these fields, so a
profile calibrated on decode holds them at their neutral defaults unless a fit on serving points
set them. A term is a group of fields one workload feature switches on (cost.bandwidth_model):

| term        | fields                                  | used when            |
|-------------|-----------------------------------------|----------------------|
| paging      | paged_tile_fixed_us, paged_hbm_scale,   | a paged KV cache     |
|             |   paged_segment_fixed_us                |                      |
| tile-math   | mma_flop_per_sm_clock,                  | q_len > 1, fp8 KV, or MLA |
|             |   mma_flop_per_warp_clock,              |                      |
|             |   wgmma_flop_scale                      |                      |
| fp8-dequant | dequant_elem_per_sm_clock,              | an fp8 KV cache      |
|             |   dequant_elem_per_warp_clock,          |                      |
|             |   fp8_segment_fixed_us                  |                      |
| l2-siblings | l2_hit_latency_ratio                    | > 1 q-block (verify) |

(The per-warp rate of each pair is the per-CTA limit beside the per-SM one: cost.cta_math_rate.)

(fp8 rows use the tile-math term too: the cap that dequantisation enters adds both.)

Error bands of serving rows are measured per *regime*, the feature a serving sweep varies (the
`validate --rows` names): paged, fp8, qlen. A row in several regimes gets the envelope.

The table, as a profile stores it (checked by `check_table`):

    {"terms": {family: {term: {"status": "fitted" | "transferred" | "default", "basis": text}}},
     "bands": {"basis": text, "regimes": {regime: {family: [[lo %, hi %] per KV-size bin]}}}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from attnsim.errors import InputError
from attnsim.simulator import profile_checks


def verify_siblings(workload) -> bool:
    """Whether a workload's outputs run sibling q-blocks that the l2-siblings term prices: a verify block
    of more than 64 rows (q_len x group). Decode keeps its calibrated stream rates (groups above 64 too),
    and MLA's q-blocks are priced by its own families (simulator/mla.py)."""
    return workload.q_len > 1 and workload.q_blocks > 1 and not workload.is_mla


# An fp8 tile loop with its rows through a block table does more work a tile than the contiguous one: the
# page indices' loads and the rows' addresses. Loop instructions of FlashDecoding's 128-token fp8 tile (d 128,
# 16 query rows, sm_90 SASS, scripts/sass_accounting.py) by page size over the contiguous loop's 601
# (docs/kernels.md, "Paging in the fp8 loop's work"); the fp8 loop is held by its work, not its bytes, so its
# tile math is priced that much slower. fa2's, split-KV's and stream-K's loops pay 15-16% at 16-token pages.
PAGED_FP8_LOOP_INSTR = {16: 676, 32: 650, 64: 619, 128: 609, 256: 609}
CONTIGUOUS_FP8_LOOP_INSTR = 601


def paged_loop_scale(workload) -> float:
    """The factor on a workload's tile-math cycles for paging: PAGED_FP8_LOOP_INSTR's ratio for a paged fp8
    K/V-head cache, 1 otherwise (16-bit loops stream at their bytes; MLA's tiles are priced by simulator/mla.py)."""
    if not (workload.kv_fp8 and workload.paged) or workload.is_mla:
        return 1.0
    return PAGED_FP8_LOOP_INSTR[workload.page_size] / CONTIGUOUS_FP8_LOOP_INSTR


@dataclass(frozen=True)
class Term:
    fields: tuple[str, ...]
    used_by: Callable  # (DecodeWorkload) -> bool


TERMS: dict[str, Term] = {
    "paging": Term(("paged_tile_fixed_us", "paged_hbm_scale", "paged_segment_fixed_us"), lambda w: w.paged),
    "tile-math": Term(("mma_flop_per_sm_clock", "mma_flop_per_warp_clock", "wgmma_flop_scale"),
                      lambda w: w.beyond_decode_math),
    "fp8-dequant": Term(("dequant_elem_per_sm_clock", "dequant_elem_per_warp_clock", "fp8_segment_fixed_us"),
                        lambda w: w.kv_fp8),
    "l2-siblings": Term(("l2_hit_latency_ratio",), verify_siblings),
}
SERVING_FIELDS = tuple(f for term in TERMS.values() for f in term.fields)
# The per-CTA limit of each rate pair refines its term: `calibrate` leaves it at 0 (no limit), and only
# validation/serving_fit.py ships it, per family, where it holds out better than the fit without it.
PER_WARP_FIELDS = ("mma_flop_per_warp_clock", "dequant_elem_per_warp_clock")
# Regimes of the serving sweeps (results/<gpu>/bench_<regime>.csv feature rows) -> their rows.
REGIMES: dict[str, Callable] = {"paged": lambda w: w.paged, "fp8": lambda w: w.kv_fp8, "qlen": lambda w: w.q_len > 1}
# MLA rows take the band of their own regime (simulator/provenance.py), measured on the `mla` sweep
# (scripts/mla_fit.py), not the serving sweeps': a profile's band table may hold it beside REGIMES
MLA_REGIME = "mla"
BAND_REGIMES = (*REGIMES, MLA_REGIME)
# fitted: on this GPU's measurements; transferred: fitted on another GPU and carried (transfer.py);
# default: the neutral CostParams default, never fitted.
STATUSES = ("fitted", "carried", "transferred", "default")  # carried: another family's fit (serving_fit.carry_terms)


def terms_used(workload) -> tuple[str, ...]:
    """The serving terms a workload's attention launch uses (empty for decode)."""
    return tuple(name for name, term in TERMS.items() if term.used_by(workload))


def regimes_of(workload) -> tuple[str, ...]:
    return tuple(name for name, member in REGIMES.items() if member(workload))


def check_table(value, where: str) -> dict:
    """A profile's serving_terms table, every entry checked (InputError naming the field)."""
    if value == {}:
        return {}
    if not isinstance(value, dict) or set(value) - {"terms", "bands"}:
        raise InputError("gpu.serving_terms", f"must be a table of 'terms' and 'bands' in {where}")
    for family, entries in _table(value.get("terms", {}), "gpu.serving_terms.terms", where).items():
        for term, entry in _table(entries, f"gpu.serving_terms.terms.{family}", where).items():
            _check_entry(entry, f"gpu.serving_terms.terms.{family}.{term}", term, where)
    bands = _table(value.get("bands", {}), "gpu.serving_terms.bands", where)
    for regime, families in _table(bands.get("regimes", {}), "gpu.serving_terms.bands.regimes", where).items():
        if regime not in BAND_REGIMES:
            raise InputError(f"gpu.serving_terms.bands.regimes.{regime}", f"unknown regime in {where} "
                                                                          f"(known: {', '.join(BAND_REGIMES)})")
        for family, rows in _table(families, f"gpu.serving_terms.bands.regimes.{regime}", where).items():
            _check_band_rows(rows, f"gpu.serving_terms.bands.regimes.{regime}.{family}", where)
    return value


def _table(value, field: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(field, f"must be a table in {where}")
    return value


def _check_entry(entry, field: str, term: str, where: str) -> None:
    if term not in TERMS:
        raise InputError(field, f"unknown serving term in {where} (known: {', '.join(TERMS)})")
    if not isinstance(entry, dict) or entry.get("status") not in STATUSES or not isinstance(entry.get("basis"), str):
        raise InputError(field, f"must be {{status: {' | '.join(STATUSES)}, basis: text}} in {where}")


def _check_band_rows(rows, field: str, where: str) -> None:
    if not profile_checks.band_rows_ok(rows):
        raise InputError(field, f"must be a list of [lo, hi] % pairs with -100 < lo <= hi in {where}")
