"""Launchers: take a Plan, compile its kernel, build index tensors once, launch.

    launcher = prepare(make_plan("streamk", workload, gpu))    # or launcher_for("streamk", workload, gpu)
    out = launcher.run(q, k_cache, v_cache)                     # launches only
    out = launcher.run(q, k_pool, v_pool, block_table=bt, k_scale=ks, v_scale=vs)   # paged, fp8

The Plan (attnsim.plans; `auto` through attnsim.planner.make_plan) is made once and launched as it
is: the Schedule the model simulates is the one uploaded here. On the device the kernel is compiled
first and its real resources (threads, registers, shared memory) are checked against the plan's: a
plan whose CTAs wait on each other (an in-kernel reduction) must still be co-resident with them, else
the plan and the kernel disagree and prepare refuses (the resources resolver is conservative, so this
means a wrong compiled-resources table). `meta` records both (`resources_source`, n_regs, smem_bytes).
Under TRITON_INTERPRET=1 nothing is compiled and the plan's figures stand.

Every attention kernel takes the same arguments (q, k, v, o, the plan tables, partial slots, the
block table and fp8 scales, strides, scale, group; constexprs BLOCK_P, BLOCK_M, BLOCK_N, HEAD_DIM,
PAGE_SIZE, Q_LEN, and LORA for the MLA kernels), so one launch path serves every strategy and every
cache layout; a combine launch (the kernel spec's `combine`) follows when the plan has one. An MLA
workload runs the strategy's MLA kernel (Strategy.kernel_for) on one latent cache passed as K
(`v_cache` None or the same tensor) and writes o [batch, q_heads, (q_len,) kv_lora_rank].
Inputs (checked by `Launcher.check_inputs`):
- q, out: [batch, q_heads, head_dim] (q_len 1) or [batch, q_heads, q_len, head_dim], in the workload dtype;
- k_cache, v_cache: [batch, kv_heads, >= max_context, head_dim] contiguous in the last dimension, or
  with page_size P a pool [num_pages, P, kv_heads, head_dim] and block_table int32
  [batch, >= ceil(max_context / P)] (pages in any order); in the KV dtype (float8_e4m3fn for fp8,
  then k_scale, v_scale float32 [kv_heads]: the cache holds K / k_scale and V / v_scale).
Where no block table or scales are needed a 1-element scratch tensor fills their slot (unread).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, replace

import torch

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.kernels.fastlaunch import CachedLaunch, interpreting
from attnsim.kernels.launch_inputs import as_4d, cache_strides, check_inputs
from attnsim.kernels.plan_tables import DeviceTables, merge_block
from attnsim.planner.choose import make_plan
from attnsim.plans.plan import Plan
from attnsim.plans.resources import COMBINE_WARPS
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources, check_coresident, resident_capacity
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.partition.flashdecoding import COMBINE_ROWS, combine_block
from attnsim.simulator.schedule import Schedule
from attnsim.simulator import mla
from attnsim.simulator.workload import FP8, DecodeWorkload, query_tile_rows

MLA_MERGE_BLOCK = mla.MERGE_FANIN - 1  # an MLA merge step's LSE rows: a 5-ary merge tree (the model's)
TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
KV_TORCH_DTYPES = {**TORCH_DTYPES, FP8: torch.float8_e4m3fn}
LOG2_E = 1.4426950408889634


def patch_interpreter_index() -> None:
    """Triton 3.6's interpreter turns a scalar into a loop bound with int(1-element array), which
    NumPy >= 2.4 rejects (triton-lang/triton#9171, fixed upstream). Take the element instead."""
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor
    if getattr(original, "attnsim_index_fix", False):
        return

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    patched.attnsim_index_fix = True
    interpreter._patch_lang_tensor = patched


def jit_function(kernel: strategies.KernelSpec):
    return getattr(importlib.import_module(kernel.module), kernel.function)


@dataclass(frozen=True)
class KernelShape:
    """Compile-time shape of one attention kernel: the constexprs plus warps and pipeline depth."""

    block_m: int  # query-tile rows: q_len x group (<= Q_BLOCK_ROWS) padded to a power of two >= 16 (tl.dot)
    block_n: int  # KV tokens per tile = the plan's kv_tile_tokens
    head_dim: int  # the tiles' width (HEAD_DIM): a power of two; MLA's latent + rope width
    num_warps: int
    num_stages: int
    block_p: int  # partials merged per step by in-kernel merges
    page_size: int = 0  # 0: contiguous K/V
    q_len: int = 1
    lora: int = 0  # an MLA kernel's kv_lora_rank (constexpr LORA); 0: a K/V-head kernel
    max_registers: int = 0  # ptxas's cap (Triton's maxnreg; KernelSpec.max_registers); 0: none
    d_valid: int = 0  # the head dim when head_dim (the tiles' width) pads it (D_VALID: kernels/tiles.py); 0: none

    def padded_columns(self) -> dict:
        """D_VALID where the tiles pad the head dim, else nothing: the kernels' default, 0 (CachedLaunch fills it)."""
        return dict(D_VALID=self.d_valid) if self.d_valid else {}

    def constexprs(self) -> dict:
        """The launch keywords: constexprs, warps, stages and the register cap if any."""
        lora = dict(LORA=self.lora) if self.lora else {}
        cap = dict(maxnreg=self.max_registers) if self.max_registers else {}
        cap.update(self.padded_columns())
        return dict(BLOCK_P=self.block_p, BLOCK_M=self.block_m, BLOCK_N=self.block_n, HEAD_DIM=self.head_dim,
                    PAGE_SIZE=self.page_size, Q_LEN=self.q_len, **lora, num_warps=self.num_warps,
                    num_stages=self.num_stages, **cap)


def kernel_shape(workload: DecodeWorkload, config: PlanConfig, kernel: strategies.KernelSpec) -> KernelShape:
    """The shape a resolved config compiles to. An MLA kernel's merges read one partial tile at a time
    (mla_tiles.merge_into), so its BLOCK_P (LSE rows per step, and the merge tree's fan-in - 1) is
    MLA_MERGE_BLOCK whatever the tile."""
    block_m = query_tile_rows(workload)
    block_p = MLA_MERGE_BLOCK if workload.is_mla else merge_block(block_m, workload.partial_dim, config.num_warps)
    return KernelShape(block_m, config.kv_tile_tokens, workload.tile_head_dim, config.num_warps, config.num_stages,
                       block_p, workload.page_size, workload.q_len, workload.kv_lora_rank,
                       kernel.max_registers(block_m, config.num_warps),
                       workload.head_dim if workload.pads_head_dim else 0)


def check_workload(workload: DecodeWorkload) -> None:
    if workload.dtype not in TORCH_DTYPES:
        raise InputError("dtype", f"{workload.dtype} unsupported by the kernels; choose {', '.join(TORCH_DTYPES)}")
    if workload.cache_dtype not in KV_TORCH_DTYPES:
        raise InputError("kv_dtype", f"{workload.cache_dtype} unsupported by the kernels; choose "
                                     f"{', '.join(KV_TORCH_DTYPES)}")


def launcher_for(spec: str, workload: DecodeWorkload, gpu: GpuSpec, config: PlanConfig | None = None,
                 device="cuda", sm_scale: float | None = None) -> "Launcher":
    """prepare(make_plan(spec, workload, gpu, config)): plan (`auto` too), then prepare."""
    check_workload(workload)
    return prepare(make_plan(spec, workload, gpu, config), device, sm_scale)


def prepare(plan: Plan, device="cuda", sm_scale: float | None = None) -> "Launcher":
    """Compile the plan's kernel, check it still runs the plan, upload the plan's tables.
    sm_scale: softmax scale (None: 1 / sqrt(head_dim))."""
    spec, workload = plan.strategy, plan.workload
    check_workload(workload)
    kernel = plan.kernel
    if kernel is None:
        ours = strategies.ours_mla() if workload.is_mla else strategies.ours()
        raise InputError("strategy", f"{spec.name!r} has no Triton kernel here; choose {', '.join(ours)}")
    shape, device = kernel_shape(workload, plan.config, kernel), torch.device(device)
    meta = dict(resources_source=plan.resources_source, plan=plan.spec, requested=plan.asked)
    compiled, measured = None, plan.resources
    if interpreting():
        patch_interpreter_index()
    else:
        compiled = compile_attention(kernel, workload, shape, device)
        measured = CtaResources(32 * compiled.metadata.num_warps, compiled.n_regs, compiled.metadata.shared)
        check_compiled(plan, measured)
        if measured != plan.resources:
            meta["resources_source"] = f"compiled ({plan.resources_source} planned {plan.resources})"
        if plan.waits_on_peers:
            check_device_fits(plan.gpu, device)
    schedule = plan.schedule
    meta.update(num_warps=shape.num_warps, num_stages=shape.num_stages, kv_tile=shape.block_n, block_m=shape.block_m,
                n_regs=getattr(compiled, "n_regs", None), n_spills=getattr(compiled, "n_spills", None),
                smem_bytes=compiled.metadata.shared if compiled is not None else None,
                grid=schedule.grid, splits=schedule.splits, launches=len(schedule.launches))
    scale = sm_scale if sm_scale is not None else 1.0 / math.sqrt(workload.head_dim)
    tables = DeviceTables.build(schedule, shape.block_m, shape.block_p + 1, device, plan.waits_on_peers)
    launcher = Launcher(spec, kernel, schedule, plan.config, meta, shape, tables, scale * LOG2_E, measured)
    if compiled is not None and len(schedule.launches) > 1:
        launcher.warm_combine()
    return launcher


def check_compiled(plan: Plan, compiled: CtaResources) -> None:
    """The compiled kernel runs the plan as planned: one CTA fits, and a plan whose CTAs wait on each
    other keeps its whole grid resident (the plan was sized with the resolver's resources)."""
    capacity = resident_capacity(plan.gpu, compiled)
    if plan.waits_on_peers or capacity == 0:
        check_coresident(plan.schedule.grid, capacity, plan.gpu.sm_count, f"{plan.spec} (compiled: {compiled})")


def kv_strides(workload: DecodeWorkload) -> tuple[int, int, int]:
    """(b or page, head, token-or-row) element strides of a packed K/V buffer: [batch, kv_heads, n, d],
    or the pool [num_pages, page_size, kv_heads, d]."""
    d, hkv, n, page = workload.head_dim, workload.kv_heads, workload.max_context, workload.page_size
    return (page * hkv * d, d, hkv * d) if page else (hkv * n * d, n * d, d)


def q_strides(workload: DecodeWorkload, width: int) -> tuple[int, int, int]:
    """(b, head, position) element strides of a packed q ([.., head_dim]) or o ([.., v_dim]) of `width`."""
    hq, ql = workload.q_heads, workload.q_len
    return hq * ql * width, ql * width, width


def block_table_stride(workload: DecodeWorkload) -> int:
    """What run() passes as the block table's row stride: its width, a multiple of 16 for the tables
    kv_cache builds (Triton specialises on divisibility by 16); 1 for the scratch of a contiguous run."""
    if not workload.paged:
        return 1
    pages = -(-workload.max_context // workload.page_size)
    return -(-pages // 16) * 16


def compile_attention(kernel: strategies.KernelSpec, workload: DecodeWorkload, shape: KernelShape,
                      device: torch.device):
    """Compile (no launch) with the argument types and stride values a packed run passes."""
    dtype, kv_dtype = TORCH_DTYPES[workload.dtype], KV_TORCH_DTYPES[workload.cache_dtype]
    strides = (*q_strides(workload, workload.head_dim), *kv_strides(workload), *kv_strides(workload),
               *q_strides(workload, workload.v_dim), block_table_stride(workload))
    i32, f32 = torch.int32, torch.float32
    pointers = (dtype, kv_dtype, kv_dtype, dtype, i32, i32, i32, f32, f32, i32, f32, f32)
    with torch.cuda.device(device):
        compiled = jit_function(kernel).warmup(*pointers, *strides, 1.0, workload.group, grid=(1,),
                                               **shape.constexprs())
        compiled = compiled.result() if hasattr(compiled, "result") else compiled  # async-compile mode
        compiled._init_handles()  # Triton loads lazily; n_regs / n_spills are known once loaded
    return compiled


def launch_grid(kernel: strategies.KernelSpec, schedule: Schedule) -> tuple[int, ...]:
    """The attention launch's grid: (CTAs,), or (outputs, splits) for a split-grid kernel, whose CTA
    output + split x outputs of the plan is program (output, split)."""
    if kernel.split_grid:
        return schedule.grid // schedule.splits, schedule.splits
    return (schedule.grid,)


def check_device_fits(gpu: GpuSpec, device: torch.device) -> None:
    """In-kernel reductions need the whole grid resident: a spec with more SMs than the device could deadlock."""
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    if sms < gpu.sm_count:
        raise InputError("gpu", f"spec {gpu.name!r} has {gpu.sm_count} SMs but the device has {sms}; "
                                "an in-kernel reduction's grid would not be co-resident")


class Launcher:
    """One planned, compiled decode attention. Not re-entrant: its partial slots and flags are its own."""

    def __init__(self, spec: strategies.Strategy, kernel: strategies.KernelSpec, schedule: Schedule,
                 config: PlanConfig, meta: dict, shape: KernelShape, tables: DeviceTables, qk_scale: float,
                 resources: CtaResources):
        self.strategy, self.schedule, self.config, self.meta = spec.name, schedule, config, meta
        self.resources = resources  # the compiled kernel's (the plan's under the interpreter)
        self.shape, self.tables, self.qk_scale = shape, tables, qk_scale
        self.kernel = kernel
        self.dtype = TORCH_DTYPES[schedule.workload.dtype]
        self.kv_dtype = KV_TORCH_DTYPES[schedule.workload.cache_dtype]
        self.launch_attention = CachedLaunch(jit_function(kernel))
        self.launch_combine = CachedLaunch(getattr(importlib.import_module(kernel.combine[0]), kernel.combine[1]))

    def run(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor | None = None,
            out: torch.Tensor | None = None, *, block_table: torch.Tensor | None = None,
            k_scale: torch.Tensor | None = None, v_scale: torch.Tensor | None = None) -> torch.Tensor:
        """o (q's shape, MLA: kv_lora_rank wide) = attention of q over the first contexts[i] tokens of
        the cache; block_table for a paged cache, k_scale / v_scale for an fp8 one; an MLA latent
        cache is k_cache alone (module docstring)."""
        w, t = self.schedule.workload, self.tables
        v_cache = k_cache if w.is_mla and v_cache is None else v_cache
        check_inputs(w, self.dtype, self.kv_dtype, q, k_cache, v_cache, out, block_table, k_scale, v_scale)
        if out is None:
            out = torch.empty((*q.shape[:-1], w.v_dim), dtype=q.dtype, device=q.device)
        q4, o4 = as_4d(q), as_4d(out)  # [batch, q_heads, q_len, d]
        if self.dtype == torch.bfloat16 and interpreting():
            q4 = q4.float()  # NumPy has no bf16 matmul: the dots run in fp32 (tiles.attend_tiles)
        bt = block_table if block_table is not None else t.seg_offsets  # unread scratch when contiguous
        k_scale = k_scale if k_scale is not None else t.lse_part  # unread scratch unless fp8
        v_scale = v_scale if v_scale is not None else t.lse_part
        args = (q4, k_cache, v_cache, o4, t.seg_offsets, t.segments, t.flags, t.o_part, t.lse_part, bt, k_scale,
                v_scale, *q4.stride()[:3], *cache_strides(k_cache, w.paged), *cache_strides(v_cache, w.paged),
                *o4.stride()[:3], bt.stride(0), self.qk_scale, w.group)
        self.launch_attention(launch_grid(self.kernel, self.schedule), args, self.shape.constexprs())
        if len(self.schedule.launches) > 1:
            self.combine(o4)
        return out

    def combine(self, o4: torch.Tensor) -> None:
        """The combine launch into o4 [batch, q_heads, q_len, head_dim]."""
        t, s = self.tables, self.shape
        width = self.schedule.workload.partial_dim  # the partials' columns (o's: D_VALID of them where padded)
        # MLA: the LSE rows its merge takes per step; otherwise the partials per load step the model bills
        block_p = s.block_p if s.lora else combine_block(self.schedule.workload, COMBINE_WARPS)
        n = len(self.schedule.reductions)
        rows = {} if s.lora else dict(ROWS=min(s.block_m, COMBINE_ROWS))
        self.launch_combine(
            (n, self.schedule.launches[1].grid // n),  # (outputs, pieces: MLA's columns, or row blocks)
            (o4, t.reductions, t.peer_offsets, t.o_part, t.lse_part, *o4.stride()[:3], self.schedule.workload.group),
            dict(BLOCK_P=block_p, BLOCK_M=s.block_m, **rows, HEAD_DIM=width, Q_LEN=s.q_len, num_warps=COMBINE_WARPS,
                 num_stages=1, **s.padded_columns()))

    def warm_combine(self) -> None:
        """Compile the combine kernel now (run on a scratch output), not on the first timed call."""
        w = self.schedule.workload
        self.combine(torch.empty(w.batch, w.q_heads, w.q_len, w.v_dim, dtype=self.dtype,
                                 device=self.tables.flags.device))
