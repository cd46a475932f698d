"""The Plan: made once, handed over — the planner, the model, the launcher, the CSV and validate share it.

    plan = resolve_plan("streamk", workload, gpu)              # a concrete strategy (planner.make_plan: any, `auto` too)
    plan.spec          # 'streamk:grid=264': the concrete plan (the CSV's strategy + options columns)
    plan.schedule      # what the engine simulates and the launcher uploads
    plan.config        # the complete PlanConfig: kernel tile, warps, stages, CTA resources
    plan.capacity      # resident CTAs of its attention kernel on plan.gpu

Resolving a strategy's options:
1. the options must be of the strategy's type (`Strategy.options_type`): a shared bag (a CLI's
   --splits for several strategies) keeps only the fields the strategy declares (`options_for`);
2. our kernels' shape and the CTA's resources come from the one resources resolver (resources.py),
   or are given (a measured row's compiled resources);
3. the partition plans the work; its Schedule names the options that decide it (`Schedule.options`),
   so the Plan's options are concrete: parsing `plan.spec` and resolving again gives the same plan;
4. workloads the GPU cannot run are refused here, for every consumer: an fp8 KV cache needs
   compute capability >= 8.9 (e4m3 conversions in hardware).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from attnsim import limits, strategies
from attnsim.errors import InputError
from attnsim.plans import resources
from attnsim.plans.spec import plan_spec
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources, resident_capacity
from attnsim.simulator.partition import options as opts
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import Schedule
from attnsim.simulator.workload import DecodeWorkload

FP8_MIN_CC = (8, 9)


@dataclass(frozen=True, eq=False)
class Plan:
    strategy: strategies.Strategy  # the entry that runs (never `auto`: that resolves to one)
    options: opts.Options  # concrete: every option that decides the work is set
    config: PlanConfig  # complete: kernel shape and CTA resources filled
    schedule: Schedule
    gpu: GpuSpec
    resources_source: str  # given | profile | compiled table[ (siblings...)] | estimate | plan (a library's own)
    requested: str = ""  # the spec asked for when it resolved to another plan ('auto'); "" = this one

    @property
    def name(self) -> str:
        return self.strategy.name

    @property
    def spec(self) -> str:
        return plan_spec(self.strategy.name, self.options)

    @property
    def workload(self) -> DecodeWorkload:
        return self.schedule.workload

    @property
    def resources(self) -> CtaResources | None:
        return self.schedule.attention.resources

    @property
    def kernel(self) -> "strategies.KernelSpec | None":
        """The Triton kernel that runs this plan (its epilogue's, MLA's, or the strategy's own)."""
        return self.strategy.kernel_for(self.workload, self.config)

    @property
    def waits_on_peers(self) -> bool:
        """CTAs of this plan wait on other CTAs' partials: its grid must be co-resident and its merge
        order deadlock-free (stream-K's tree). The last-arrival epilogue waits on nobody."""
        return self.strategy.in_kernel_reduction and self.config.epilogue != opts.EPILOGUE_LAST

    @property
    def capacity(self) -> int:
        """Resident CTAs of the attention launch on self.gpu."""
        return resident_capacity(self.gpu, self.resources)

    @property
    def asked(self) -> str:
        """What was asked for: `requested`, else this plan's spec."""
        return self.requested or self.spec


def option_values(values: opts.Options | PlanConfig | dict | None) -> dict:
    """The plan options set in `values` (typed options, a PlanConfig bag or a dict), by name."""
    if values is None:
        return {}
    if isinstance(values, opts.Options):
        return values.set()
    if isinstance(values, PlanConfig):
        return {k: v for k, v in values.options().items() if k in opts.OPTION_NAMES}
    return {k: v for k, v in dict(values).items() if v is not None}


def options_for(strategy: strategies.Strategy, values: opts.Options | PlanConfig | dict | None) -> opts.Options:
    """`values` as the strategy's option type, dropping fields it does not declare (a shared bag)."""
    if isinstance(values, strategy.options_type):
        return values
    return opts.build(strategy.options_type, opts.keep_declared(strategy.options_type, option_values(values)),
                      strategy.name)


def resolve_plan(name: str | strategies.Strategy, workload: DecodeWorkload, gpu: GpuSpec,
                 options: opts.Options | PlanConfig | dict | None = None, *, given: CtaResources | None = None,
                 requested: str = "") -> Plan:
    """The concrete plan of a strategy the model plans itself (not `auto`: planner.make_plan).
    given: the attention CTA's resources when known (a measured row's compiled kernel)."""
    strategy = name if isinstance(name, strategies.Strategy) else strategies.get(name)
    if strategy.partition is None:
        raise InputError("strategy", f"{strategy.name} is chosen by the planner or not modelled: no plan of its own")
    if (workload.is_mla or strategy.mla_only) and strategy.unsupported(workload):
        raise InputError("strategy", strategy.unsupported(workload))
    check_gpu_supports(workload, gpu)
    chosen = options_for(strategy, options)
    config, source = plan_config(strategy, workload, gpu, chosen, given)
    check_plan_size(workload, config)
    schedule = strategy.partition(workload, gpu, config)
    concrete = opts.build(strategy.options_type, {**chosen.set(), **schedule.options}, strategy.name)
    return Plan(strategy, concrete, config, schedule, gpu, source, requested)


def plan_config(strategy: strategies.Strategy, workload: DecodeWorkload, gpu: GpuSpec, chosen: opts.Options,
                given: CtaResources | None = None) -> tuple[PlanConfig, str]:
    """The complete PlanConfig of `chosen` options: our kernels' shape and resources filled."""
    config = PlanConfig(**chosen.set())
    kernel = strategy.kernel_for(workload, chosen)
    if kernel is None:
        return config, "plan"
    shape = resources.kernel_shape(kernel, workload, gpu, config.kv_tile_tokens, config.num_warps,
                                   config.num_stages, given)
    return replace(config, kv_tile_tokens=shape.tile, num_warps=shape.warps, num_stages=shape.stages,
                   resources=shape.resources, combine_resources=resources.combine_resources(workload, gpu),
                   stream_warps=resources.stream_warps(kernel, workload, shape.tile, shape.stages)), shape.source


def check_gpu_supports(workload: DecodeWorkload, gpu: GpuSpec) -> None:
    """What no plan can get around: an fp8 KV cache on a GPU without fp8 conversions."""
    if workload.kv_fp8 and tuple(gpu.compute_capability) < FP8_MIN_CC:
        cc = ".".join(map(str, gpu.compute_capability))
        raise InputError("kv_dtype", f"fp8 KV cache needs compute capability >= 8.9 (Ada/Hopper); "
                                     f"{gpu.name} is {cc}")


def check_plan_size(workload: DecodeWorkload, config: PlanConfig) -> None:
    """No plan exceeds limits.MAX_PLAN_CTAS."""
    if config.splits is not None:
        limits.check_max(config.splits * workload.output_count, limits.MAX_PLAN_CTAS, "splits",
                         "CTAs (splits x outputs)")
    if config.chunk_tokens is not None:
        per_seq = workload.output_count // workload.batch
        cap = config.max_splits or limits.MAX_CONTEXT  # at most max_splits chunks per sequence
        chunks = per_seq * sum(min(-(-c // config.chunk_tokens), cap) for c in workload.contexts)
        limits.check_max(chunks, limits.MAX_PLAN_CTAS, "chunk_tokens", "CTAs (chunks of every output)")


def check_splits_fill(workload: DecodeWorkload, splits: int | None, tile: int) -> None:
    """A user's split count leaves no split of the longest sequence without a KV tile (the kernels
    run empty splits, so plans accept them; a user asking for them has mistaken the count)."""
    if splits is not None:
        tiles = -(-workload.max_context // tile)
        if splits > tiles:
            raise InputError("splits", f"{splits} splits of the longest sequence's {tiles} KV tiles "
                                       f"({workload.max_context} tokens / {tile}) would leave empty CTAs; "
                                       f"give at most {tiles}")
