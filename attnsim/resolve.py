"""The one plan resolver: (strategy, workload, GPU profile, user options) -> the plan that runs.

`predict`, `schedule`, the report, validation and the kernel launcher all plan through here, so the
Schedule the model simulates is the Schedule the kernel launches:

1. options a strategy does not take (a FlashDecoding split count for stream-K) are dropped;
2. our kernels' shape: the user's KV tile / warps / stages, else the kernel's defaults (a 16 KB K
   tile, the registry's warps and stages);
3. the CTA's resources (threads, registers, shared memory), which decide occupancy and so stream-K's
   grid: given explicitly (a measured row, a compiled kernel), else what calibration recorded for
   that exact kernel in the profile, else the compiled-resources table shipped for the compute
   capability (`attnsim/profiles/kernels_sm90.json`, recorded from Triton's compiler), else an
   estimate — the same chain for every profile, so a datasheet GPU plans the grid the kernel would
   launch there. A serving variant (paged, fp8 KV, q_len > 1: a suffix on the key) not in a table
   takes its contiguous decode kernel's entry of the same tile (a few registers apart), else the
   estimate;
4. workloads the GPU cannot run are refused here, for every consumer: an fp8 KV cache needs
   compute capability >= 8.9 (e4m3 conversions in hardware).

A strategy with a `choose` function (`auto`: the planner) resolves to the entry and options it
chooses; the Resolved says what was asked for (`requested`) and which plan runs (`plan`, a plan spec).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from importlib import resources as package_files

from attnsim import limits, strategies
from attnsim.errors import InputError
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources, occupancy
from attnsim.simulator.partition.common import PlanConfig, kv_tile_tokens, query_tile_rows
from attnsim.simulator.schedule import Schedule
from attnsim.simulator.workload import DecodeWorkload

K_TILE_BYTES = 16 * 1024  # our kernels' default KV tile: one 16 KB K tile (64 tokens at d 128, fp16; 128 at fp8)
FP8_MIN_CC = (8, 9)
# A paged tile's K/V address depends on a block-table load, which Triton's pipeliner schedules a stage
# earlier: at the kernels' 3 stages it keeps one K/V buffer, at 5 two, as the contiguous loop at 3
# (compiled for sm_90: 72 KB of shared memory either way). So paged kernels default to 2 more stages.
PAGED_EXTRA_STAGES = 2
COMBINE_KERNEL = "combine"
COMBINE_WARPS = 8
KERNEL_OPTIONS = frozenset({"kv_tile_tokens", "num_warps", "num_stages", "resources", "combine_resources"})
COMPILED_TABLES = {(9, 0): "kernels_sm90.json"}


@dataclass(frozen=True)
class Resolved:
    strategy: strategies.Strategy
    config: PlanConfig
    resources_source: str  # given | profile | compiled table | estimate | plan (baselines plan their own)
    requested: str = ""  # the strategy asked for, when it resolved to another (auto -> the planner's choice)
    plan: str = ""  # the plan spec that runs: 'streamk:grid=264' (the user's options for a plain strategy)


def default_kv_tile_tokens(workload: DecodeWorkload) -> int:
    """16 KB of K in the cache's dtype: the bytes in flight that set a CTA's latency-bound streaming
    rate stay the same for fp8. Tiles and pages are powers of two, so a tile holds whole pages or
    lies inside one: the plans need no other alignment (a page index per tile or per page)."""
    return max(16, K_TILE_BYTES // (workload.head_dim * workload.kv_dtype_bytes))


def default_stages(kernel: strategies.KernelSpec, workload: DecodeWorkload) -> int:
    """The registry's pipeline depth, PAGED_EXTRA_STAGES deeper for a paged cache."""
    return kernel.stages + (PAGED_EXTRA_STAGES if workload.paged else 0)


def kernel_key(kernel: str, workload: DecodeWorkload, tile: int, warps: int, stages: int) -> str:
    """'lean_decode/d128/float16/m16/w8/s3/n64': what a compiled CTA's resources depend on; serving
    variants add '/p16' (page size), '/kvfloat8_e4m3fn' (KV dtype), '/q4' (q_len)."""
    variant = (f"/p{workload.page_size}" * workload.paged + f"/kv{workload.kv_dtype}" * bool(workload.kv_dtype)
               + f"/q{workload.q_len}" * (workload.q_len > 1))
    return (f"{kernel}/d{workload.head_dim}/{workload.dtype}/m{query_tile_rows(workload)}"
            f"/w{warps}/s{stages}/n{tile}{variant}")


@functools.lru_cache(maxsize=8)
def compiled_table(compute_capability: tuple[int, int]) -> dict:
    """The shipped compiled-resources table for a compute capability (sm90's stands in for others)."""
    name = COMPILED_TABLES.get(tuple(compute_capability), COMPILED_TABLES[(9, 0)])
    path = package_files.files("attnsim") / "profiles" / name
    return json.loads(path.read_text())["kernels"] if path.is_file() else {}


def estimated_resources(workload: DecodeWorkload, tile: int, warps: int, stages: int) -> CtaResources:
    """Triton's shared memory for our tile loop: (stages - 1) K+V tiles in flight plus a small
    epilogue buffer (matches the compiled d64/d128 kernels); registers: a typical 128."""
    buffers = max(1, stages - 1 - (PAGED_EXTRA_STAGES if workload.paged else 0))
    smem = buffers * 2 * tile * workload.head_dim * workload.kv_dtype_bytes + 6144
    return CtaResources(32 * warps, 128, smem)


def _lookup(gpu: GpuSpec, key: str) -> tuple[CtaResources | None, str]:
    for table, source in ((gpu.kernels, "profile"), (compiled_table(gpu.compute_capability), "compiled table")):
        entry = table.get(key)
        if entry:
            return CtaResources(int(entry["threads"]), int(entry["regs_per_thread"]), int(entry["smem_bytes"])), source
    return None, "estimate"


def _attention_resources(kernel, workload, gpu, tile, warps, stages) -> tuple[CtaResources, str]:
    res, source = _lookup(gpu, kernel_key(kernel.name, workload, tile, warps, stages))
    if res is None and (workload.paged or workload.kv_dtype or workload.q_len > 1):
        decode = replace(workload, page_size=0, kv_dtype="", q_len=1)  # same BLOCK_M: q_len x group rows
        decode_stages = stages - (PAGED_EXTRA_STAGES if workload.paged else 0)
        decode_key = kernel_key(kernel.name, decode, tile, warps, decode_stages).replace(
            f"/m{query_tile_rows(decode)}/", f"/m{query_tile_rows(workload)}/")
        res, source = _lookup(gpu, decode_key)
        source = f"{source} (decode kernel)" if res else source
    return res or estimated_resources(workload, tile, warps, stages), source


def _fitting_shape(kernel, workload, gpu, options) -> tuple[int, int, CtaResources, str]:
    """(tile, stages, resources, source): the defaults, with fewer pipeline stages and then smaller
    tiles (never below 16 tokens, never overriding what the user set) until one CTA fits an SM —
    what a kernel author does for a GPU with less shared memory (e.g. d 256 on an L40S)."""
    tile = options.kv_tile_tokens or default_kv_tile_tokens(workload)
    warps = options.num_warps or kernel.warps
    stages = options.num_stages or default_stages(kernel, workload)
    res, source = _attention_resources(kernel, workload, gpu, tile, warps, stages)
    while occupancy(gpu, res).blocks_per_sm == 0:
        if options.num_stages is None and stages > 1:
            stages -= 1
        elif options.kv_tile_tokens is None and tile > 16:
            tile //= 2
        else:
            break  # nothing left to shrink: the plan reports that the CTA cannot launch
        res, source = _attention_resources(kernel, workload, gpu, tile, warps, stages)
    return tile, stages, res, source


def kernel_config(kernel: strategies.KernelSpec, workload: DecodeWorkload, gpu: GpuSpec,
                  options: PlanConfig) -> tuple[PlanConfig, str]:
    warps = options.num_warps or kernel.warps
    if options.resources:
        tile = options.kv_tile_tokens or default_kv_tile_tokens(workload)
        stages, res, source = options.num_stages or default_stages(kernel, workload), options.resources, "given"
    else:
        tile, stages, res, source = _fitting_shape(kernel, workload, gpu, options)
    merged = replace(workload, page_size=0, kv_dtype="")  # the combine reads partials: only q_len x group matter
    combine = options.combine_resources or _lookup(
        gpu, kernel_key(COMBINE_KERNEL, merged, 0, COMBINE_WARPS, 1))[0] or CtaResources(32 * COMBINE_WARPS, 32, 0)
    return replace(options, kv_tile_tokens=tile, num_warps=warps, num_stages=stages, resources=res,
                   combine_resources=combine), source


# Integer plan options a user (or a measured row) may set: (lowest, highest). attnsim/limits.py says why.
OPTION_RANGES = {"splits": (1, limits.MAX_SPLITS), "grid": (1, limits.MAX_PLAN_CTAS),
                 "kv_tile_tokens": (1, limits.MAX_KV_TILE_TOKENS), "num_warps": (1, 32), "num_stages": (1, 16),
                 "dp_outputs": (0, limits.MAX_OUTPUTS), "chunk_tokens": (1, limits.MAX_CONTEXT),
                 "batch_invariant": (0, 1)}


def check_options(options: PlanConfig, fields: dict[str, str] | None = None) -> PlanConfig:
    """Every set integer option within OPTION_RANGES; `fields` renames options in messages
    (the CLI's --kv-tile for kv_tile_tokens)."""
    for key, (low, high) in OPTION_RANGES.items():
        value = getattr(options, key)
        if value is None:
            continue
        field = (fields or {}).get(key, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(field, f"must be an integer >= {low}, got {value!r}")
        limits.check_max(value, high, field)
    return options


def check_splits_fill(workload: DecodeWorkload, config: PlanConfig) -> None:
    """A user's split count leaves no split of the longest sequence without a KV tile (the kernels
    run empty splits, so plans accept them; a user asking for them has mistaken the count)."""
    if config.splits is not None:
        tile = kv_tile_tokens(workload, config)
        tiles = -(-workload.max_context // tile)
        if config.splits > tiles:
            raise InputError("splits", f"{config.splits} splits of the longest sequence's {tiles} KV tiles "
                                       f"({workload.max_context} tokens / {tile}) would leave empty CTAs; "
                                       f"give at most {tiles}")


def check_plan_size(workload: DecodeWorkload, config: PlanConfig) -> None:
    """No plan exceeds limits.MAX_PLAN_CTAS."""
    if config.splits is not None:
        limits.check_max(config.splits * workload.output_count, limits.MAX_PLAN_CTAS, "splits",
                         "CTAs (splits x outputs)")
    if config.chunk_tokens is not None:
        per_seq = workload.output_count // workload.batch
        chunks = per_seq * sum(-(-c // config.chunk_tokens) for c in workload.contexts)
        limits.check_max(chunks, limits.MAX_PLAN_CTAS, "chunk_tokens", "CTAs (chunks of every output)")


def resolve(name: str, workload: DecodeWorkload, gpu: GpuSpec, options: PlanConfig | None = None) -> Resolved:
    """The strategy entry and the complete plan configuration it runs with."""
    strategy = strategies.get(name)
    check_gpu_supports(workload, gpu)
    options = options or PlanConfig()
    if strategy.choose is not None:
        chosen_name, chosen = strategy.choose(workload, gpu, options)
        inner = resolve(chosen_name, workload, gpu, chosen)
        return replace(inner, requested=strategy.name, plan=plan_spec(inner.strategy.name, chosen))
    kept = {k: v for k, v in options.options().items()
            if k in strategy.options or (k in KERNEL_OPTIONS and strategy.kernel) or k == "family"}
    options = check_options(PlanConfig(**kept))  # options the strategy does not take cannot matter
    if strategy.kernel is None:
        check_plan_size(workload, options)
        return Resolved(strategy, options, "plan", plan=plan_spec(strategy.name, options))
    config, source = kernel_config(strategy.kernel, workload, gpu, options)
    check_plan_size(workload, config)
    return Resolved(strategy, config, source, plan=plan_spec(strategy.name, options))


def check_gpu_supports(workload: DecodeWorkload, gpu: GpuSpec) -> None:
    """What no plan can get around: an fp8 KV cache on a GPU without fp8 conversions."""
    if workload.kv_fp8 and tuple(gpu.compute_capability) < FP8_MIN_CC:
        cc = ".".join(map(str, gpu.compute_capability))
        raise InputError("kv_dtype", f"fp8 KV cache needs compute capability >= 8.9 (Ada/Hopper); "
                                     f"{gpu.name} is {cc}")


SPEC_OPTIONS = ("splits", "grid", "kv_tile_tokens", "num_warps", "num_stages", "dp_outputs", "chunk_tokens",
                "batch_invariant")
STRATEGY_OPTIONS = ("splits", "grid", "dp_outputs", "chunk_tokens", "batch_invariant")  # taken per strategy


def parse_plan_spec(text: str) -> tuple[str, PlanConfig]:
    """'streamk:grid=132' or 'flashdecoding:splits=4,kv_tile_tokens=32' -> (canonical name, options).

    A plan spec names one concrete plan to run or predict; options the strategy does not take are
    an error here (unlike a shared --splits, which applies only to the strategies that take it)."""
    name, _, rest = str(text).partition(":")
    strategy = strategies.get(name)
    options = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, _, value = item.partition("=")
        key = key.strip()
        digits = value.strip()
        if key not in SPEC_OPTIONS or not (digits.isascii() and digits.isdigit() and len(digits) <= 18) \
                or int(digits) <= 0 and key != "dp_outputs":
            raise InputError("strategy", f"{text!r}: expected name:option=integer with options "
                                         f"{', '.join(SPEC_OPTIONS)}")
        if key in STRATEGY_OPTIONS and key not in strategy.options:
            raise InputError("strategy", f"{text!r}: {strategy.name} takes no {key}")
        options[key] = int(digits)
    return strategy.name, check_options(PlanConfig(**options), dict.fromkeys(SPEC_OPTIONS, "strategy"))


def plan_spec(name: str, options: PlanConfig | None = None) -> str:
    """The inverse of parse_plan_spec: 'streamk:grid=132' ('streamk' without options)."""
    set_ = {k: v for k, v in (options or PlanConfig()).options().items() if k in SPEC_OPTIONS}
    return name + (":" + ",".join(f"{k}={v}" for k, v in set_.items()) if set_ else "")


def plan(name: str, workload: DecodeWorkload, gpu: GpuSpec, config: PlanConfig | None = None) -> Schedule:
    """The raw partition of `name` with `config` as given (unset fields: the partition's own defaults)."""
    strategy = strategies.get(name)
    if strategy.partition is None:
        raise InputError("strategy", f"{strategy.name} is timed but not modelled: no plan to simulate")
    return strategy.partition(workload, gpu, config or PlanConfig())


def plan_for(name: str, workload: DecodeWorkload, gpu: GpuSpec, options: PlanConfig | None = None) -> Schedule:
    """The Schedule the kernel would run for `workload` on `gpu` with the user's `options`."""
    resolved = resolve(name, workload, gpu, options)
    return plan(resolved.strategy.name, workload, gpu, resolved.config)
