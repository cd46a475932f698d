"""The strategy registry: one entry per decode-attention strategy, read by every consumer.

The planner, the engine, the launcher, calibration, validation, the plots and the tests all look a strategy up
here instead of keying its name in tables of their own. Adding a strategy is one plan file in
`simulator/partition/`, one `register(...)` below, and a kernel file if it runs one.

An entry says
- how it plans (`partition`) and the type of the options it accepts (`options_type`: one class per kind of
  plan in simulator/partition/options.py, so a strategy cannot be handed a field it does not declare);
- which cost families its launches use, which parameters calibration fits in each (`families`), and fixed
  ones (`fixed_params`, e.g. the stream-K kernel's merge fan-in);
- the Triton kernel that runs it (`kernel`, a kernel_specs.KernelSpec: module, jit function, warps, stages), the
  one that runs its MLA plans (`mla_kernel`; none: it takes no MLA), or a baseline's SDPA backend (`sdpa_backend`);
- whether its plans reduce partials in-kernel (co-resident grid, merge-order check) — a property of the plan,
  not of the name (plans.Plan.waits_on_peers: stream-K's epilogue=last waits on nobody; `epilogue_kernels`:
  epilogue option value -> the kernel that runs it; `chunk_kernel`: its fixed-chunk plans);
- presentation: colour, a one-line summary, and whether `predict` shows it by default;
- for the planner (attnsim/planner): which options it sweeps (`search`); `planned` marks `auto`, the entry the
  planner resolves to another entry's concrete plan (attnsim.planner.make_plan). HEURISTICS below names the
  production rules the planner reports against, as data (label, the entry they pick options for).

Nothing here imports torch or triton: kernels are named by module path and loaded by the launcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from attnsim.errors import InputError
from attnsim.kernel_specs import (  # noqa: F401 (KernelSpec and MLA_COMBINE: read as strategies.X)
    FA2_KERNEL, MLA_COMBINE, MLA_KERNEL, MLA_STREAMK_KERNEL, SPLIT_KERNEL, SPLIT_KV_CHUNKS_KERNEL, SPLIT_KV_KERNEL,
    STREAMK_EPILOGUES, STREAMK_KERNEL, KernelSpec,
)
from attnsim.simulator.partition import (
    balanced, fa2, flashdecoding, flashmla, hybrid, sdpa, splitkv, streamk, torch_cudnn, torch_flash,
)
from attnsim.simulator import mla
from attnsim.simulator.datasheet import KernelTraits
from attnsim.simulator.partition import options as opts
from attnsim.simulator.terms import PER_WARP_FIELDS, SERVING_FIELDS

# Cost parameters calibration fits, by what a kernel family does (see simulator/hardware.CostParams).
STREAMING = ("cta_stream_gbps_per_warp", "launch_overhead_us", "cta_fixed_us", "bw_knee", "hbm_scale",
             "l2_dirty_fraction")
# The per-SM stream limit (cost.py "Per-SM sharing"), fitted on decode grids above one CTA per SM: stream-K 37 GB/s,
# fa2 / FlashDecoding / split-KV 43-44 on the H200 (grids just above 2 CTAs per SM: docs/planner.md)
SM_SHARING = ("sm_stream_gbps",)
# The un-hidden tile math of decode query tiles above 16 rows (cost.wide_tile_us), fitted only where points
# have GQA groups above 16 (calibration.EXERCISED_BY: the cal-search MQA rows), in every family of our
# kernels that runs 32-row decode tiles (docs/planner.md, "Wide query tiles")
WIDE_TILE = ("wide_tile_ns_per_row_token",)
PER_TOKEN = ("cta_ns_per_token",)  # a CTA's per-token work in series with its stream (cost.cta_stream_gbps)
MERGING = ("segment_fixed_us", "fixup_fixed_us", "fixup_per_peer_us")
COMBINE = ("launch_overhead_us", "cta_fixed_us", "segment_fixed_us", "cta_stream_gbps_per_warp")  # segment: per load step
LAST_ARRIVAL_MERGE = ("fixup_fixed_us", "fixup_per_peer_us")  # the merge a split output's last CTA does
# FA2's CUDA kernels fix their tile rows: decode is math-capped, its mma rate fitted (from tile_math_fields)
TILE_MATH = ("mma_flop_per_sm_clock",)
# Serving cost fields of our kernels (paging, tile math, fp8: simulator/terms.py), fitted only where calibration
# has points that exercise them (--sweep cal-serving; calibration.EXERCISED_BY); not the per-warp limits,
# which only the serving fit's held-out test ships (validation/serving_fit.py).
SERVING = tuple(f for f in SERVING_FIELDS if f not in PER_WARP_FIELDS)
# MLA kernels' families, fitted on cal-mla: streaming + latent tiles' mma rate (docs/mla.md, "Cost families")
MLA_STREAMING = STREAMING + TILE_MATH

STREAMK_MERGE_FANIN = 5  # lean_decode merges BLOCK_P = 4 partials per step: a 5-ary tree (plan_tables.merge_block)
# Our kernels keep one K and one V tile of 16 KB in flight (plans.resources.K_TILE_BYTES: at num_stages 3
# Triton's pipeliner holds one K/V buffer ahead), whatever their warps: the datasheet model's Little's law.
OUR_TILE_PAIR_BYTES = 2 * 16 * 1024
OUR_TRAITS = KernelTraits(warps=4, bytes_in_flight=OUR_TILE_PAIR_BYTES)
COMBINE_TRAITS = KernelTraits(warps=8, combine=True, round_trips_per_segment=2)  # COMBINE_WARPS; partials from L2


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    partition: Callable | None  # (workload, gpu, PlanConfig) -> Schedule; None: not modelled yet
    families: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # cost family -> fitted params
    mla_families: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # fitted on MLA rows alone
    mla_owner: str | None = None  # runs no K/V-head kernel: whose MLA families its MLA plans bill
    # cost family -> what its kernel's code does, for first-principles costs (simulator/datasheet.py)
    traits: Mapping[str, KernelTraits] = field(default_factory=dict)
    fixed_params: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    options_type: type[opts.Options] = opts.Options  # what a user (or a recorded row) may set
    kernel: KernelSpec | None = None
    mla_kernel: KernelSpec | None = None  # runs its plans of MLA workloads (workload.kv_lora_rank > 0)
    epilogue_kernels: Mapping[str, KernelSpec] = field(default_factory=dict)
    chunk_kernel: KernelSpec | None = None  # runs its plans of fixed chunks (options chunk_tokens), if not `kernel`
    sdpa_backend: str | None = None  # torch.nn.attention.SDPBackend member of a PyTorch baseline
    in_kernel_reduction: bool = False
    # Its split outputs are merged inside the attention launch by the split that finishes last
    # (an arrival counter; no combine launch, no waiting, no co-residency): the planner's bounds.
    last_arrival_merge: bool = False
    baseline: bool = False  # a third-party implementation we time and model, not ours
    default: bool = False  # shown by `predict` and reports unless strategies are named
    calibrate: bool = False  # timed on the calibration set by `attnsim calibrate`
    color: str = "#55A868"
    aliases: tuple[str, ...] = ()
    search: tuple[str, ...] = ()  # PlanConfig fields the planner sweeps (attnsim/planner/candidates.py)
    # Option variants timed on the small-output part of the calibration set ("grid=33"), so the fit sees
    # the regimes the planner searches (a few CTAs, each latency-bound), not only the default plan's.
    calibration_options: tuple[str, ...] = ()
    planned: bool = False  # the planner chooses another entry's concrete plan for it (`auto`)
    max_head_dim: int | None = None  # a library's limit: larger head dims are refused (its plan raises)
    # (workload) -> why this strategy cannot run it, or None: such inputs are not modelled (a baseline
    # time of something the library cannot run would be compared against as if it could)
    refuses: Callable | None = None
    # (options dict) -> (another entry's name, its options) when these options make this entry's plan
    # that entry's plan exactly (same schedule, same kernel), else None: the planner names a concrete
    # plan once (attnsim/planner/canonical.py)
    reduces_to: Callable | None = None

    @property
    def options(self) -> frozenset[str]:
        """The plan options it takes beyond our kernels' shape: splits, grid, ..."""
        return frozenset(self.options_type.names()) - frozenset(opts.KERNEL_FIELDS)

    @property
    def predictable(self) -> bool:
        return self.partition is not None or self.planned

    @property
    def runnable(self) -> bool:
        return self.kernel is not None or self.mla_kernel is not None or self.sdpa_backend is not None or self.planned

    def takes(self, head_dim: int) -> bool:
        """Whether this strategy runs (and its plan models) `head_dim` at all."""
        return self.max_head_dim is None or head_dim <= self.max_head_dim

    def unsupported(self, workload) -> str | None:
        """Why this strategy neither runs nor is modelled on `workload` (None: it is)."""
        if workload.is_mla and self.kernel is not None and self.mla_kernel is None:
            return f"{self.name} has no MLA kernel (MLA runs {', '.join(ours_mla())})"
        if not workload.is_mla and self.mla_only:
            return f"{self.name} plans MLA workloads only (a model with kv_lora_rank)"
        if not workload.is_mla and not self.takes(workload.head_dim):
            return f"{self.name} takes head_dim <= {self.max_head_dim}"
        return self.refuses(workload) if self.refuses is not None else None

    @property
    def mla_only(self) -> bool:
        """A plan of MLA workloads only (run by an MLA kernel, no K/V-head kernel): FlashMLA's schedule."""
        return self.kernel is None and self.mla_kernel is not None

    def kernel_for(self, workload, config=None) -> KernelSpec | None:
        """The kernel running its plan of `workload` with `config`: MLA's, fixed chunks', an epilogue's, or `kernel`."""
        if workload.is_mla:
            return self.mla_kernel
        if self.chunk_kernel is not None and getattr(config, "chunk_tokens", None) is not None:
            return self.chunk_kernel
        return self.epilogue_kernels.get(getattr(config, "epilogue", None), self.kernel)

    @property
    def candidate(self) -> bool:
        """A plan the planner may choose for a (non-MLA) workload: run by our kernels and modelled."""
        return self.kernel is not None and self.partition is not None

    def candidate_for(self, workload) -> bool:
        """A plan the planner may choose for `workload`: its kernel for that workload runs it."""
        return self.kernel_for(workload) is not None and self.partition is not None


REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    for key in (strategy.name, *strategy.aliases):
        if key in REGISTRY or key in _ALIASES:
            raise ValueError(f"strategy name {key!r} registered twice")
    REGISTRY[strategy.name] = strategy
    _ALIASES.update({alias: strategy.name for alias in strategy.aliases})
    return strategy


_ALIASES: dict[str, str] = {}


def get(name: str) -> Strategy:
    """A strategy by name or alias (case-insensitive); InputError('strategy', ...) if unknown."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in REGISTRY:
        raise InputError("strategy", f"unknown strategy {name!r}; choose from {', '.join(names())}")
    return REGISTRY[key]


def canonical(name: str) -> str:
    return get(name).name


def parse_list(text: str, field_name: str = "strategy") -> tuple[str, ...]:
    """'fa2,lean' -> ('fa2', 'streamk'); an empty list or an unknown name is an InputError."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise InputError(field_name, f"{text!r}: expected a comma-separated list of strategy names, "
                                     f"e.g. {','.join(default_names())}")
    for spec in (p for p in parts if ":" in p or "=" in p):  # a plan spec where names are wanted: say so
        raise InputError(field_name, f"{spec!r} is a plan spec; names here (options as flags, e.g. --grid 132)")
    try:
        return tuple(dict.fromkeys(canonical(p) for p in parts))
    except InputError as exc:
        raise InputError(field_name, exc.message) from None


def names(predicate: Callable[[Strategy], bool] = lambda s: True) -> tuple[str, ...]:
    return tuple(s.name for s in REGISTRY.values() if predicate(s))


def default_names() -> tuple[str, ...]:
    return names(lambda s: s.default)


def ours() -> tuple[str, ...]:
    """Strategies run by our own kernels (on K/V-head workloads)."""
    return names(lambda s: s.kernel is not None)


def ours_mla() -> tuple[str, ...]:
    """Strategies our MLA kernels run (on MLA workloads)."""
    return names(lambda s: s.mla_kernel is not None)


def baselines() -> tuple[str, ...]:
    return names(lambda s: s.baseline)


def predictable() -> tuple[str, ...]:
    return names(lambda s: s.predictable)


def candidates(workload=None) -> tuple[str, ...]:
    """What the planner searches: our modelled kernels' plans (of `workload`: those that take it)."""
    if workload is None:
        return names(lambda s: s.candidate)
    return names(lambda s: s.candidate_for(workload) and s.unsupported(workload) is None)


def families_of(name: str) -> tuple[str, ...]:
    return tuple(get(name).families)


def fit_owner(name: str, mla: bool = False) -> str | None:
    """The strategy whose cost families a strategy's measurements (mla: its MLA ones, `mla_families`)
    calibrate: itself if it owns such families, else its `mla_owner` (flashmla: flashdecoding) or the
    owner running the same kernel (e.g. a plan that runs the stream-K kernel)."""
    s, owned = get(name), (lambda o: o.mla_families) if mla else (lambda o: o.families)
    if owned(s) or (mla and s.mla_owner):
        return s.name if owned(s) else s.mla_owner
    return next((o.name for o in REGISTRY.values() if owned(o) and s.kernel and o.kernel == s.kernel), None)


def mla_families() -> dict[str, tuple[str, ...]]:
    """Every MLA cost family -> the parameters calibration fits in it (only where MLA points exist)."""
    return {f: params for s in REGISTRY.values() for f, params in s.mla_families.items()}


def all_families() -> dict[str, tuple[str, ...]]:
    """Every cost family any strategy owns -> the parameters calibration fits in it."""
    return {f: params for s in REGISTRY.values() for f, params in s.families.items()}


def serving_fields_fitted_on_decode() -> dict[str, tuple[str, ...]]:
    """Family -> the serving fields (simulator/terms.py) its decode fit moves: the tile-math rate of a kernel
    fixing its tile rows (FA2's CUDA kernels: math-capped decode); only serving points move the others."""
    rows = {f for f, t in kernel_traits().items() if t.tile_rows}
    return {f: TILE_MATH for f, params in all_families().items() if f in rows and set(TILE_MATH) <= set(params)}


def kernel_traits() -> dict[str, KernelTraits]:
    """Every cost family -> its kernel's traits, for the datasheet model."""
    return {f: t for s in REGISTRY.values() for f, t in s.traits.items()}


def color(name: str) -> str:
    try:
        return get(name).color
    except InputError:
        return "#8C8C8C"


def help_list() -> str:
    """'fa2, flashdecoding, streamk (alias lean), ...' for --help texts."""
    return ", ".join(f"{s.name} (alias {', '.join(s.aliases)})" if s.aliases else s.name for s in REGISTRY.values())


# Speedup columns of predictions are relative to these (they are always simulated).
SPEEDUP_BASES = ("fa2", "flashdecoding")
SCHEDULE_DEFAULT = "streamk"  # what `attnsim schedule` shows unless told otherwise

register(Strategy(
    "fa2", "one CTA per (sequence, kv-head group) walking the whole context", fa2.partition,
    families={"fa2": STREAMING + PER_TOKEN + SM_SHARING + WIDE_TILE + SERVING}, traits={"fa2": OUR_TRAITS}, options_type=opts.KernelOptions, kernel=FA2_KERNEL,
    mla_kernel=MLA_KERNEL, mla_families=mla.with_wide_families({"fa2-mla": MLA_STREAMING}),
    default=True, calibrate=True, color="#7F7F7F"))
register(Strategy(
    "flashdecoding", "FA2's split-KV: split count from num_splits_heuristic, partials + a combine launch",
    flashdecoding.partition, families={"flashdecoding": STREAMING + PER_TOKEN + SM_SHARING + WIDE_TILE + SERVING, "flashdecoding-combine": COMBINE},
    mla_families=mla.with_wide_families({"flashdecoding-mla": MLA_STREAMING, "flashdecoding-mla-combine": COMBINE}),
    traits={"flashdecoding": OUR_TRAITS, "flashdecoding-combine": COMBINE_TRAITS},
    options_type=opts.SplitOptions, kernel=SPLIT_KERNEL, mla_kernel=MLA_KERNEL, default=True, calibrate=True, color="#4C72B0",
    aliases=("flash-decoding", "fd"),
    search=("splits",), calibration_options=("splits=1", "splits=2", "splits=4", "splits=8", "splits=16")))
register(Strategy(
    "streamk", "persistent grid at resident capacity; (sequence, head, KV-tile) space split evenly, "
    "straddling outputs merged in-kernel by a host CTA (epilogue=last: by the last CTA to arrive)", streamk.partition,
    families={"streamk": STREAMING + PER_TOKEN + SM_SHARING + WIDE_TILE + MERGING + SERVING}, mla_families=mla.with_wide_families({"streamk-mla": MLA_STREAMING + MERGING}),
    fixed_params={f: {"merge_fanin": STREAMK_MERGE_FANIN} for f in ("streamk", "streamk-mla", "streamk-mla64")},
    traits={"streamk": replace(OUR_TRAITS, warps=STREAMK_KERNEL.warps, merge_fanin=STREAMK_MERGE_FANIN)},
    options_type=opts.StreamKOptions, kernel=STREAMK_KERNEL, mla_kernel=MLA_STREAMK_KERNEL,
    epilogue_kernels=STREAMK_EPILOGUES, in_kernel_reduction=True, default=True,
    calibrate=True, color="#DD8452", aliases=("lean", "stream-k"),
    search=("grid",), calibration_options=("grid=33", "grid=66", "grid=132")))
register(Strategy(
    "splitkv", "split-KV in one launch: outputs x S CTAs (S a power of two filling a wave, or fixed chunks), the "
    "last split of each output to finish merges the partials (arrival counter; deterministic, no combine launch)",
    splitkv.partition, families={"splitkv": STREAMING + PER_TOKEN + SM_SHARING + WIDE_TILE + LAST_ARRIVAL_MERGE + SERVING},
    traits={"splitkv": OUR_TRAITS}, options_type=opts.SplitKvOptions, kernel=SPLIT_KV_KERNEL,
    chunk_kernel=SPLIT_KV_CHUNKS_KERNEL, last_arrival_merge=True, calibrate=True, color="#8C564B",
    aliases=("split-kv", "skv"), search=("splits",), calibration_options=("splits=1", "splits=4", "splits=16", "splits=64")))
def _hybrid_without_dp(options: dict):
    """A hybrid with no data-parallel outputs is stream-K on the same grid (hybrid.py: dp = 0)."""
    if options.get("dp_outputs") == 0:
        return "streamk", {k: v for k, v in options.items() if k != "dp_outputs"}
    return None


register(Strategy(
    "hybrid", "data-parallel + stream-K (CUTLASS's DP + two-tile SK): whole outputs for the full waves "
    "but the last, stream-K for the rest; runs the stream-K kernel", hybrid.partition,
    options_type=opts.HybridOptions, kernel=STREAMK_KERNEL, mla_kernel=MLA_STREAMK_KERNEL,
    epilogue_kernels=STREAMK_EPILOGUES, in_kernel_reduction=True,
    calibrate=True, color="#C44E52", aliases=("dp-sk",), search=("grid", "dp_outputs"), reduces_to=_hybrid_without_dp))
register(Strategy(
    "balanced", "balanced split-KV (FlashInfer's planner): per-sequence splits of one chunk size sized to "
    "the resident grid, longest first; runs the FlashDecoding kernels", balanced.partition,
    options_type=opts.ChunkOptions, kernel=SPLIT_KERNEL, mla_kernel=MLA_KERNEL, calibrate=True, color="#64B5CD",
    aliases=("balanced-split",), search=("chunk_tokens",)))
register(Strategy(
    "flashmla", "FlashMLA's schedule (MLA only): sum of (KV blocks + 5) per output cut evenly over SM parts, "
    "split outputs merged by a combine launch", flashmla.partition,
    options_type=opts.GridOptions, mla_kernel=MLA_KERNEL, mla_owner="flashdecoding", color="#17BECF", aliases=("flash-mla",)))
register(Strategy(
    "torch-flash", "PyTorch SDPA's flash backend: FA2's CUDA split-KV kernels (baseline)", torch_flash.partition,
    families={"torch-flash": STREAMING, "torch-flash-combine": COMBINE, "torch-flash-nosplit": STREAMING + TILE_MATH},
    traits={"torch-flash": torch_flash.SPLIT_TRAITS, "torch-flash-combine": torch_flash.COMBINE_TRAITS,
            "torch-flash-nosplit": torch_flash.NOSPLIT_TRAITS},
    options_type=opts.LibrarySplitOptions, sdpa_backend="FLASH_ATTENTION", baseline=True, calibrate=True,
    color="#8172B3", refuses=sdpa.unsupported))
register(Strategy(
    "torch-cudnn", "PyTorch SDPA's cuDNN backend (baseline): 16-row q-blocks x 128-token KV tiles, power-of-two "
    "KV splits up to 2 x SMs CTAs, a reduction launch per (sequence, q-head)", torch_cudnn.partition,
    families={"torch-cudnn-d64": STREAMING, "torch-cudnn-d128": STREAMING, "torch-cudnn-combine": COMBINE},
    traits=torch_cudnn.TRAITS,
    options_type=opts.LibrarySplitOptions, max_head_dim=torch_cudnn.MAX_HEAD_DIM,
    sdpa_backend="CUDNN_ATTENTION", baseline=True, calibrate=True, color="#937860", refuses=sdpa.unsupported))
register(Strategy(
    "auto", "the planner's choice (attnsim/planner): every candidate plan of our kernels searched with the "
    "model, the fastest predicted one runs; batch_invariant=1 pins a fixed chunk; tune=K times the K best", None,
    options_type=opts.PlannerOptions, planned=True, color="#2CA02C", aliases=("planner",)))


@dataclass(frozen=True)
class Heuristic:
    """A production system's rule for the decode split, replayed on our kernels' plans: `rule` keys
    attnsim/planner/heuristics.RULES (None: the strategy's own default options)."""

    name: str
    label: str
    strategy: str
    rule: str | None = None
    mla_only: bool = False  # an engine's MLA decode rule: replayed on MLA workloads only

    def applies(self, workload) -> bool:
        return workload.is_mla or not self.mla_only


SAME_TILE_LOOP = {"splitkv": splitkv.MATH_FAMILY}  # family -> whose tile loop it runs (serving_fit; its rates: Launch.math_family)
# What `attnsim plan` reports the model's choice against (DOMAIN.md section 6).
HEURISTICS = (
    Heuristic("fa2-rule", "FA2 num_splits_heuristic (0.85 wave efficiency)", "flashdecoding", "fa2_splits"),
    Heuristic("fa3-rule", "FA3: num_splits_heuristic on the SMs, then per-sequence splits of "
              "ceil(1.1 x kv_heads x blocks / SMs) blocks", "balanced", "fa3_chunk"),
    Heuristic("flashinfer-rule", "FlashInfer: smallest chunk whose chunks x kv_heads fit the resident grid",
              "balanced", "flashinfer_chunk"),
    Heuristic("lean-rule", "Lean/ORT: persistent grid of 2 x SMs (capped at capacity)", "streamk", "lean_grid"),
    Heuristic("sglang-rule", "SGLang Triton decode: log2(len/64) x SMs rule, at most 8 splits", "balanced",
              "sglang_chunk"),
    Heuristic("cutlass-rule", "CUTLASS stream-K: DP waves + SK blocks scored by iterations saved", "hybrid",
              "cutlass_blocks"),
    Heuristic("flashmla-rule", "FlashMLA: sum of (KV blocks + 5) cut evenly over SM parts, combine launch",
              "flashmla", mla_only=True),
    Heuristic("vllm-mla-rule", "vLLM Triton MLA: a fixed 4 KV splits per sequence, then a reduce launch",
              "flashdecoding", "vllm_mla_splits", mla_only=True),
)


def heuristics_for(workload) -> tuple[Heuristic, ...]:
    """The rules the planner reports against on `workload` (those whose plan takes it)."""
    return tuple(h for h in HEURISTICS if h.applies(workload) and get(h.strategy).unsupported(workload) is None)
