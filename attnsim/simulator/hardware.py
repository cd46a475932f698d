"""GPU hardware profiles: frozen dataclasses with units in the field names.

Two kinds of numbers live here:
- `GpuSpec`: what the chip is (SMs, occupancy limits, HBM bandwidth). Datasheet figures for the
  presets; calibration (`attnsim calibrate`) replaces the bandwidth figures with measured ones, and
  a transfer (simulator/transfer.py) carries a calibrated profile to a GPU we have not measured.
  `profile_source` says which of the three a spec is.
- `CostParams`: how one of our kernels behaves on it (per-CTA streaming bandwidth, fixed costs).
  Defaults are rough first guesses from the H100 anchors (a 4-warp CTA streams ~16 GB/s, a tiny
  kernel costs ~5 µs under do_bench) until calibration fits them per kernel.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from attnsim.errors import InputError
from attnsim.simulator import floor, mla, profile_checks, terms

KB = 1024
MIB = 1024 * KB


@dataclass(frozen=True)
class CostParams:
    """Cost-model parameters of one kernel family on one GPU (all times in µs, rates in GB/s)."""

    cta_stream_gbps_per_warp: float = 4.0  # unshared streaming rate of one CTA, per warp
    launch_overhead_us: float = 4.5  # per launch, as do_bench sees it (launch + event gap)
    cta_fixed_us: float = 1.0  # per CTA: prologue (load q) + epilogue (write o)
    segment_fixed_us: float = 0.3  # per (CTA, output) segment: re-init of the online softmax
    tile_fixed_us: float = 0.0  # per KV tile, not overlapped with streaming
    fixup_fixed_us: float = 0.5  # per host CTA that merges partials in-kernel
    fixup_per_peer_us: float = 0.2  # per merge step on the host's critical path (see merge_fanin)
    # 0: the host merges its peers one by one (a step per peer). k >= 2: a k-ary merge tree (peers
    # pre-merge up to k - 1 lower-id peers each, vectorised), a step per tree level.
    merge_fanin: float = 0.0
    bw_knee: float = 2.5  # sharpness p of the bandwidth knee (large p -> hard min())
    hbm_scale: float = 1.0  # this kernel's saturated bandwidth / the profile's hbm_read_gbps
    # Fraction of the L2 that is dirty when the kernel starts: its reads evict those lines, which
    # costs their write-back. do_bench flushes the L2 by writing 256 MB before every sample, so
    # under that timer it is ~1 (a serving engine's previous layer leaves some dirty lines too).
    l2_dirty_fraction: float = 1.0
    # Paged KV (workload.page_size > 0); contiguous plans never read these. Defaults: paging costs
    # only its block-table bytes until calibration fits them on paged points (attnsim bench --sweep cal-serving).
    paged_tile_fixed_us: float = 0.0  # per KV tile: the dependent block-table load the pipeline does not hide
    paged_hbm_scale: float = 1.0  # saturated bandwidth of paged reads / contiguous reads (scattered pages)
    paged_segment_fixed_us: float = 0.0  # per segment: its first block-table entry, loaded before its first K/V
    # Tile math, an SM resource its streaming CTAs share (cost.BandwidthModel caps a CTA's rate by it
    # for verify blocks, fp8 caches, MLA and kernels whose code fixes their tile rows, FA2's CUDA
    # kernels; our kernels' decode keeps its calibrated stream rates, so it is unchanged).
    # Default: Hopper's dense fp16 tensor peak, 4096 FLOP/clock/SM (989 TFLOP/s = 132 SMs x 1.83 GHz);
    # a fit to q_len > 1 points also absorbs the softmax, whose work grows with the same rows x tokens.
    mma_flop_per_sm_clock: float = 4096.0
    dequant_elem_per_sm_clock: float = 64.0  # fp8 -> fp16/bf16 K/V element conversions per SM per clock
    # per (CTA, output) segment on an fp8 cache: q scaled into fp16 and the first tiles' convert-and-stage
    # chain (V through shared memory) before the pipeline overlaps them; a CTA of few tiles pays it in full
    fp8_segment_fixed_us: float = 0.0
    # SM clocks of the online softmax per score (one query row x one KV token) beside the mma, in the same
    # cap: an exp2 on the SFU, 16 per SM per clock on sm80/sm90 -> 1/16 (simulator/datasheet.py). It makes
    # the cap depend on head_dim (a d 64 byte carries twice the scores of a d 128 byte). 0: folded into
    # mma_flop_per_sm_clock, as the serving fits of our kernels (one head_dim) were made.
    softmax_clocks_per_score: float = 0.0
    # The same tile math, per warp: however idle its SM, a CTA of w warps retires at most w x these
    # (a warp issues from one SM sub-partition, and its own dependent mma / convert chain paces it), so
    # with k such CTAs streaming on an SM each gets min(SM rate / k, w x warp rate) (cost.BandwidthModel).
    # 0: no per-CTA limit, the SM's rates alone (every profile before issue 18's per-CTA fit).
    mma_flop_per_warp_clock: float = 0.0
    dequant_elem_per_warp_clock: float = 0.0
    # The mma rates above for a query tile of WGMMA_ROWS (64) rows or more, which 4 warps run as Hopper's
    # warpgroup mma, over the rate of the mma.sync code that 16-32-row tiles run (cost._math_rate): fa2's
    # 64-row verify tiles streamed 0.84x the time of the same blocks as 32-row tiles (docs/kernels.md,
    # "Query tiles of 17-32 rows") with twice the FLOPs. 1: one rate for every tile (the default).
    wgmma_flop_scale: float = 1.0
    # What one SM streams, GB/s, shared by the CTAs streaming on it (cost.BandwidthModel, simulator/sm_wave.py):
    # two co-resident CTAs stream at most this together. 0: no per-SM limit (every profile before it).
    sm_stream_gbps: float = 0.0
    # ns per KV token per query-tile row above 16 that a decode CTA spends on tile math its stream does not
    # hide (cost.wide_tile_us): a 32-row tile (GQA groups above 16: MQA 32/1, 64/2) doubles the math per
    # byte the calibrated 16-row stream rates hold, and a lone CTA measures ~20% slower than they say.
    # Billed as a fixed cost (the CTA holds its slot, the others take the bandwidth), so it shows where
    # CTAs are latency-bound and hides where the chip is saturated. 0: off (every profile before it).
    wide_tile_ns_per_row_token: float = 0.0
    # ns per KV token (one KV head's K and V row) that a CTA spends on per-token work its own stream does
    # not hide (the online softmax's scores, masking, the pipeline's issue slots), in series with its
    # stream: 1 / rate = 1 / (warps x cta_stream_gbps_per_warp) + this x tokens per byte
    # (cost.cta_stream_gbps). A d 64 byte carries twice the tokens of a d 128 byte: a lone fa2 CTA on the
    # H200 streams 33.9 GB/s at d 64, 36.9 at d 128 (H100: 35.7 / 37.0). It slows a CTA under the
    # bandwidth knee; a saturated chip hides it. 0: off (every profile before it).
    cta_ns_per_token: float = 0.0
    # L2-hit latency / HBM latency seen by a latency-bound stream (cost.l2_hit_speedup): where sibling
    # q-blocks read the same tiles (a share h of a launch's bytes L2 hits, simulator/reuse.py), a CTA's and
    # an SM's bytes in flight turn over 1 / ((1 - h) + h x this) times faster. 1: no speed-up (the default).
    l2_hit_latency_ratio: float = 1.0


DEFAULT_COST = CostParams()  # frozen: one shared instance for families without parameters
# A combine launch is queued right behind its attention launch: small gap, tiny CTAs.
COMBINE_DEFAULT = CostParams(launch_overhead_us=1.5, cta_fixed_us=0.5, segment_fixed_us=0.05)


@dataclass(frozen=True)
class GpuSpec:
    """What a GPU is. Immutable: calibration returns a new one (dataclasses.replace)."""

    name: str
    sm_count: int
    compute_capability: tuple[int, int]
    max_warps_per_sm: int
    max_ctas_per_sm: int
    max_threads_per_sm: int
    max_threads_per_cta: int
    regs_per_sm: int
    regs_per_cta: int
    reg_alloc_unit: int  # registers are allocated per warp in units of this many
    max_regs_per_thread: int
    reg_subpartitions: int  # register file split per SM sub-partition (4 on cc >= 7)
    smem_per_sm_bytes: int
    smem_per_cta_optin_bytes: int  # largest static + dynamic a CTA may opt into
    smem_reserved_per_cta_bytes: int  # runtime's per-CTA reserve (1 KB on cc >= 8)
    smem_alloc_unit_bytes: int
    smem_carveout_steps_kb: tuple[int, ...]
    hbm_read_gbps: float
    l2_bytes: int
    clock_mhz: int
    # Device memory as the driver reports it (nvidia-smi memory.total); what KV capacity is checked
    # against (simulator/capacity.py). 0: unknown, no check.
    memory_bytes: int = 0
    # SMs that stream faster than the rest under a full load: their CTAs end first, so a multi-wave launch's slots
    # free on them ahead of the others, more so every wave (engine._tail_rate). 0: not measured, none modelled.
    # A chip property, like memory_bytes (calibration does not change it).
    fast_sms: int = 0
    source: str = "datasheet"  # free text: "datasheet", "calibrated <date> on <device>", "transferred from ..."
    cost: dict[str, CostParams] = field(default_factory=dict)  # per kernel family; see cost_for
    # Compiled kernel resources calibration recorded on this GPU, keyed like attnsim.plans.resources.Variant.key
    # ("lean_decode/d128/float16/m16/w8/s3/n64") -> {threads, regs_per_thread, smem_bytes}.
    kernels: dict[str, dict] = field(default_factory=dict)
    profile_source: str = "datasheet"  # one of PROFILE_SOURCES: where the cost figures come from
    profile_date: str | None = None  # calibration date (YYYY-MM-DD) of a calibrated profile
    # Expected MAPE (%) of predictions with this profile where no validation on this GPU exists yet
    # (a transferred profile: transfer.EXPECTED_MARGIN_PCT); None where it is not stated.
    expected_error_pct: float | None = None
    # Error bands of predictions with this profile (attnsim.simulator.bands): {"edges_bytes", "families":
    # {family: [[lo %, hi %] per KV-size bin]}, "basis", "coverage"}; transfer_bands: the same, measured for
    # a transfer of this profile to another GPU (what a transferred profile inherits).
    error_bands: dict = field(default_factory=dict)
    transfer_bands: dict = field(default_factory=dict)
    # Cost families whose costs are the datasheet model's (simulator/datasheet.py), not calibrated on
    # any GPU: a calibration that did not measure them, a transfer whose source lacks them. Predictions
    # of these are marked "not calibrated" and carry the datasheet model's measured error bands.
    uncalibrated: tuple[str, ...] = ()
    # Cost families this profile took from another preset's shipped profile (profiles.complete_families):
    # family -> that preset's name; what a row's provenance names (simulator/provenance.transferred_from).
    transferred: dict[str, str] = field(default_factory=dict)
    # Per family, a fit for carrying to other GPUs where it differs from `cost` (validation/physical_fit.py:
    # shapes held at the datasheet's physics): the best fit of one GPU is not always one that carries.
    # A transfer takes these (simulator/transfer.py); predictions on this GPU use `cost`.
    carried_cost: dict[str, CostParams] = field(default_factory=dict)
    # Where each serving cost term (paged / fp8 / verify fields, simulator/terms.py) of each family comes
    # from, and the error bands measured on the serving regimes: {"terms": {family: {term: {status,
    # basis}}}, "bands": {"basis", "regimes": {regime: {family: [[lo %, hi %] per KV bin]}}}}.
    serving_terms: dict = field(default_factory=dict)
    # A call's floor under the bench's timer, fitted on measured floors (simulator/floor.py); {}: the datasheet's
    read_floor: dict = field(default_factory=dict)

    def cost_for(self, family: str) -> CostParams:
        """Parameters of a kernel family ('fa2', 'flashdecoding', 'streamk', 'flashdecoding-combine', ...).
        An MLA kernel's family ('streamk-mla', partition.common.kernel_family) the profile has not
        fitted stands in with its partitioning's ('streamk'): same plan structure, other kernel; its tile
        math at the tensor peak (warpgroup tiles unscaled), no per-warp limit (the defaults), not at rates
        a K/V-head kernel's fit chose. A 64-row MLA kernel's ('streamk-mla64') stands in with its 16/32-row one's first."""
        if family in self.cost:
            return self.cost[family]
        if mla.WIDE_FAMILY_SUFFIX in family:  # a 64-row MLA kernel: the 16/32-row one's (fitted or not)
            return self.cost_for(mla.narrow_family(family))
        if mla.FAMILY_SUFFIX in family:
            base = self.cost_for(family.replace(mla.FAMILY_SUFFIX, "", 1))
            return dataclasses.replace(base, mma_flop_per_sm_clock=DEFAULT_COST.mma_flop_per_sm_clock,
                                       mma_flop_per_warp_clock=DEFAULT_COST.mma_flop_per_warp_clock,
                                       wgmma_flop_scale=DEFAULT_COST.wgmma_flop_scale)
        return COMBINE_DEFAULT if family.endswith("-combine") else self.cost.get("default", DEFAULT_COST)

    def kernel_config(self, strategy: str, head_dim: int, dtype: str) -> dict | None:
        return self.kernels.get(f"{strategy}/d{head_dim}/{dtype}")

    def __hash__(self) -> int:  # `cost` is a dict; the name + source identify a profile
        return hash((self.name, self.source))


PROFILE_SOURCES = ("datasheet", "calibrated", "transferred")

_CC9_STEPS = (0, 8, 16, 32, 64, 100, 132, 164, 196, 228)  # cc 9.0 and 10.0 alike (Blackwell tuning guide)
_CC80_STEPS = (0, 8, 16, 32, 64, 100, 132, 164)
_CC86_STEPS = (0, 8, 16, 32, 64, 100)


def _common(cc: tuple[int, int]) -> dict:
    return dict(
        compute_capability=cc, max_threads_per_cta=1024, regs_per_sm=64 * KB, regs_per_cta=64 * KB,
        reg_alloc_unit=256, max_regs_per_thread=255, reg_subpartitions=4,
        smem_reserved_per_cta_bytes=1 * KB, smem_alloc_unit_bytes=128,
    )


# memory_bytes: nvidia-smi's memory.total in MiB. H100 80GB HBM3 81,559, A100-SXM4-80GB 81,920, L40S
# 46,068 (modal-labs/modal-client PR #2797, which lists them); H200 143,771 (DOMAIN.md, the lent
# device); B200 183,359 (an nvidia-smi table in NVIDIA/TensorRT-LLM issue 10278). The datasheets'
# 80 / 141 / 48 / 180 GB are these figures rounded.
# fast_sms: traced on an H100 (results/h100/kernel_trace.csv): the same 24 of 132 SMs end their CTAs at 0.72-0.84
# of the others' time in every run; the H200 is the same GH100 die. One die's count: another H100 hid smaller
# tails (results/h100/fa2_grid_tails2.csv), the rule still nearer there (docs/validation.md, "Wave drift").
GH100_FAST_SMS = 24
PRESETS: dict[str, GpuSpec] = {
    "h100-sxm": GpuSpec(
        name="h100-sxm", sm_count=132, max_warps_per_sm=64, max_ctas_per_sm=32,
        max_threads_per_sm=2048, smem_per_sm_bytes=228 * KB, smem_per_cta_optin_bytes=227 * KB,
        smem_carveout_steps_kb=_CC9_STEPS, hbm_read_gbps=3350.0, l2_bytes=50 * KB * KB,
        clock_mhz=1980, memory_bytes=81_559 * MIB, fast_sms=GH100_FAST_SMS, **_common((9, 0)),
    ),
    "h200": GpuSpec(
        name="h200", sm_count=132, max_warps_per_sm=64, max_ctas_per_sm=32,
        max_threads_per_sm=2048, smem_per_sm_bytes=228 * KB, smem_per_cta_optin_bytes=227 * KB,
        smem_carveout_steps_kb=_CC9_STEPS, hbm_read_gbps=4800.0, l2_bytes=60 * KB * KB,
        clock_mhz=1980, memory_bytes=143_771 * MIB, fast_sms=GH100_FAST_SMS, **_common((9, 0)),
    ),
    "a100-80gb": GpuSpec(
        name="a100-80gb", sm_count=108, max_warps_per_sm=64, max_ctas_per_sm=32,
        max_threads_per_sm=2048, smem_per_sm_bytes=164 * KB, smem_per_cta_optin_bytes=163 * KB,
        smem_carveout_steps_kb=_CC80_STEPS, hbm_read_gbps=2039.0, l2_bytes=40 * KB * KB,
        clock_mhz=1410, memory_bytes=81_920 * MIB, **_common((8, 0)),
    ),
    "l40s": GpuSpec(
        name="l40s", sm_count=142, max_warps_per_sm=48, max_ctas_per_sm=24,
        max_threads_per_sm=1536, smem_per_sm_bytes=100 * KB, smem_per_cta_optin_bytes=99 * KB,
        smem_carveout_steps_kb=_CC86_STEPS, hbm_read_gbps=864.0, l2_bytes=96 * KB * KB,
        clock_mhz=2520, memory_bytes=46_068 * MIB, **_common((8, 9)),
    ),
    # NVIDIA B200 (HGX/DGX B200, 1000 W; two dies seen as one GPU), cc 10.0. Where each figure comes from:
    # - 148 SMs, cc 10.0, 2048 threads/SM, 64 K registers/SM, 228 KB shared memory/SM, L2 126.5 MB: a driver
    #   query printed in pytorch/ao PR #4002 (github.com/pytorch/ao/pull/4002); 148 SMs (74 per die) also in
    #   Chips and Cheese, "Nvidia's B200: Keeping the CUDA Juggernaut Rolling".
    # - 32 CTAs/SM, 64 warps/SM, 227 KB per-block opt-in, 1 KB reserve per CTA: CCCL
    #   libcudacxx/include/cuda/__device/arch_traits.h (arch_traits<sm_100>); carve-out steps 0..228 KB and
    #   227 KB per block: NVIDIA Blackwell tuning guide (docs.nvidia.com/cuda/blackwell-tuning-guide), which
    #   also gives the L2 as "126 MB".
    # - HBM3e 8,000 GB/s: NVIDIA's HGX B200 figure as quoted by operators (Vultr's HGX B200 overview,
    #   "8.0 TB/s"); NOT confirmed from an NVIDIA datasheet here. The driver's bus (7680 bits x 3996 MHz x 2,
    #   pytorch/ao PR #4002) gives 7,672 GB/s, so the true peak may be ~4% below this figure.
    # - clock 1980 MHz: NOT confirmed. NVIDIA publishes no SM boost clock for the B200; third-party spec
    #   databases list 1.98 GHz and Chips and Cheese says clocks are "similar to the H100's SXM5" (1980).
    "b200": GpuSpec(
        name="b200", sm_count=148, max_warps_per_sm=64, max_ctas_per_sm=32,
        max_threads_per_sm=2048, smem_per_sm_bytes=228 * KB, smem_per_cta_optin_bytes=227 * KB,
        smem_carveout_steps_kb=_CC9_STEPS, hbm_read_gbps=8000.0, l2_bytes=126 * KB * KB + 512 * KB,
        clock_mhz=1980, memory_bytes=183_359 * MIB, **_common((10, 0)),
    ),
}
ALIASES = {"h100": "h100-sxm", "a100": "a100-80gb"}


def gpu_names() -> list[str]:
    return sorted(PRESETS) + sorted(ALIASES)


def from_name(name: str) -> GpuSpec:
    """A preset by name or alias (case-insensitive)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in PRESETS:
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise InputError("gpu", f"unknown GPU {shown!r}; known: {', '.join(gpu_names())}, or a .json/.toml file")
    return PRESETS[key]


def load_spec_file(path: Path) -> GpuSpec:
    """A custom profile from JSON or TOML: a `base` preset name plus fields to override, or all fields."""
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise InputError("gpu", f"cannot read profile {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError("gpu", f"profile {path} must hold an object/table")
    return spec_from_dict(data.get("gpu", data), str(path))


def spec_from_dict(data: dict, where: str) -> GpuSpec:
    """Build a GpuSpec from plain data (a base preset + overrides); every field is type-checked."""
    if not isinstance(data, dict):
        raise InputError("gpu", f"profile {where} must hold an object/table")
    if not isinstance(data.get("base", ""), str):
        raise InputError("gpu.base", f"must be a preset name in {where}, got {data['base']!r}")
    data = dict(data)
    base = from_name(data.pop("base")) if "base" in data else None
    cost_data = data.pop("cost", None)
    carried_data = data.pop("carried_cost", None)
    for key, table in (("cost", cost_data), ("carried_cost", carried_data)):
        if table is not None and not isinstance(table, dict):
            raise InputError(f"gpu.{key}", f"must be a table of kernel families in {where}")
    kernels = data.pop("kernels", None)
    bands = {key: profile_checks.band_table(key, data.pop(key), where)
             for key in ("error_bands", "transfer_bands") if key in data}
    if "serving_terms" in data:
        bands["serving_terms"] = terms.check_table(data.pop("serving_terms"), where)
    known = {f.name: f for f in dataclasses.fields(GpuSpec)}
    for key, value in data.items():
        if key not in known or key == "cost":
            raise InputError(f"gpu.{key}", f"unknown field in {where}")
        if not (key in ("profile_date", "expected_error_pct") and value is None):
            data[key] = _coerce(key, value, where)
    if "source" in data and "profile_source" not in data:  # a profile written before the field existed
        data["profile_source"] = profile_source_of(data["source"])
    if cost_data is not None:
        data["cost"] = {fam: _cost_from_dict(fam, d, where) for fam, d in cost_data.items()}
    if carried_data is not None:
        data["carried_cost"] = {fam: _cost_from_dict(fam, d, where) for fam, d in carried_data.items()}
    if kernels is not None:
        data["kernels"] = profile_checks.kernel_tables(kernels, where)
    data.update(bands)
    _chip_of_preset(data, base)
    missing = [n for n, f in known.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if base is None and missing:
        raise InputError(f"gpu.{missing[0]}", f"missing in {where} (or give `base = \"h100\"`)")
    spec = dataclasses.replace(base, **data) if base is not None else GpuSpec(**data)
    profile_checks.cross_fields(spec, where)
    profile_checks.claimed_source(spec, where)
    return spec


CHIP_FIELDS = ("memory_bytes", "fast_sms")  # what calibration does not change


def _chip_of_preset(data: dict, base: GpuSpec | None) -> None:
    """A profile written before GpuSpec had a chip field (`memory_bytes`, `fast_sms`: the shipped H100/H200 ones)
    and naming a preset takes the preset's: the chip's, which calibration does not change."""
    name = ALIASES.get(str(data.get("name", "")).lower(), str(data.get("name", "")).lower())
    if base is None and name in PRESETS:
        for key in CHIP_FIELDS:
            data.setdefault(key, getattr(PRESETS[name], key))


def profile_source_of(source: str) -> str:
    """PROFILE_SOURCES entry of a `source` text: "calibrated ..." -> calibrated, "transferred ..." ->
    transferred, anything else -> datasheet."""
    return next((kind for kind in PROFILE_SOURCES[1:] if source.startswith(kind)), "datasheet")


def _coerce(key: str, value, where: str):
    if key == "profile_source":
        if value not in PROFILE_SOURCES:
            raise InputError(f"gpu.{key}", f"must be one of {', '.join(PROFILE_SOURCES)} in {where}, got {value!r}")
        return value
    if key == "expected_error_pct":
        if value is not None and (not profile_checks.is_number(value) or not 0 <= value <= 1000):
            raise InputError(f"gpu.{key}", f"must be a number in [0, 1000] or null in {where}, got {value!r}")
        return None if value is None else float(value)
    if key == "uncalibrated":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise InputError(f"gpu.{key}", f"must be a list of cost family names in {where}")
        return tuple(value)
    if key == "read_floor":
        return floor.check(value, where)
    if key == "transferred":
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise InputError(f"gpu.{key}", f"must be a table of cost family -> preset name in {where}")
        return dict(value)
    tuple_fields = {"compute_capability", "smem_carveout_steps_kb"}
    if key in tuple_fields:
        ints = isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool)
                                                        and 0 <= v <= 1 << 20 for v in value)
        if not ints or not value or (key == "compute_capability" and len(value) != 2):
            raise InputError(f"gpu.{key}", f"must be a non-empty list of integers in [0, {1 << 20}] in {where}")
        return tuple(value)
    if key in ("name", "source", "profile_date"):
        if not isinstance(value, str):
            raise InputError(f"gpu.{key}", f"must be a string in {where}")
        return value
    return profile_checks.spec_number(key, value, where)


def _cost_from_dict(family: str, data: dict, where: str) -> CostParams:
    known = {f.name for f in dataclasses.fields(CostParams)}
    if not isinstance(data, dict):
        raise InputError(f"gpu.cost.{family}", f"must be a table in {where}")
    for key, value in data.items():
        if key not in known:
            raise InputError(f"gpu.cost.{family}.{key}", f"unknown field in {where}")
    return CostParams(**{k: profile_checks.cost_number(family, k, v, where) for k, v in data.items()})


def spec_to_dict(spec: GpuSpec) -> dict:
    out = dataclasses.asdict(spec)
    out["compute_capability"] = list(spec.compute_capability)
    out["smem_carveout_steps_kb"] = list(spec.smem_carveout_steps_kb)
    out["uncalibrated"] = list(spec.uncalibrated)
    return out
