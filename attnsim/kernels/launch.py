"""Launchers: compile the kernel, plan with its real resources, build index tensors once, launch.

    launcher = prepare("streamk", workload, gpu)          # compile -> CtaResources -> plan -> tables
    out = launcher.run(q, k_cache, v_cache)               # launches only

The kernel is compiled before planning because the plan needs what the compiled CTA asks of an SM
(threads, registers, shared memory): stream-K's grid is the resident capacity that
`attnsim.simulator.occupancy` computes from those figures, so the co-residency its in-kernel
reduction relies on holds by construction. Under TRITON_INTERPRET=1 nothing is compiled and the
plan's default resource estimate stands in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from attnsim.errors import InputError
from attnsim.kernels.fastlaunch import CachedLaunch, interpreting
from attnsim.kernels import fa2_decode, flash_decoding, lean_decode
from attnsim.kernels.plan_tables import DeviceTables, merge_block
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.partition import canonical_strategy, common, plan
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import Schedule
from attnsim.simulator.workload import DecodeWorkload

KERNEL_HEAD_DIMS = (32, 64, 128, 256)
TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
ATTENTION_KERNELS = {"fa2": fa2_decode.fa2_decode_kernel, "flashdecoding": flash_decoding.flash_decoding_kernel,
                     "streamk": lean_decode.lean_decode_kernel}
LOG2_E = 1.4426950408889634
K_TILE_BYTES = 16 * 1024  # default KV tile: one K tile of 16 KB (64 tokens at d 128, fp16)
# Warps and pipeline depth per kernel with 16 KB K tiles (H100 sweeps, scripts/kernel_check.py --sweep;
# tiles of 32-128 tokens and 2-4 stages were within ~2% wherever >= 2 CTAs share an SM). 3 stages keep
# two K/V tiles in flight per CTA, which matters near one CTA per SM (FA2 on 128 CTAs: 3.1 TB/s with 3
# stages, 2.5 with 2). Stream-K takes 8 warps: the same streaming rate, half the registers per thread
# for its merges, and half the CTAs, so fewer peers per straddling output.
DEFAULT_WARPS = {"fa2": 4, "flashdecoding": 4, "streamk": 8}
DEFAULT_STAGES = {"fa2": 3, "flashdecoding": 3, "streamk": 3}
COMBINE_WARPS = 8


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


@dataclass(frozen=True)
class KernelShape:
    """Compile-time shape of one attention kernel: the constexprs plus warps and pipeline depth."""

    block_m: int  # query-tile rows: the group (<= Q_BLOCK_ROWS) padded to a power of two >= 16 (tl.dot)
    block_n: int  # KV tokens per tile = the plan's kv_tile_tokens
    head_dim: int
    num_warps: int
    num_stages: int
    block_p: int  # partials merged per step by stream-K's merges

    def constexprs(self, strategy: str) -> dict:
        out = dict(BLOCK_M=self.block_m, BLOCK_N=self.block_n, HEAD_DIM=self.head_dim,
                   num_warps=self.num_warps, num_stages=self.num_stages)
        return {**out, "BLOCK_P": self.block_p} if strategy == "streamk" else out


def default_kv_tile_tokens(head_dim: int, dtype_bytes: int = 2) -> int:
    return K_TILE_BYTES // (head_dim * dtype_bytes)


def kernel_shape(strategy: str, workload: DecodeWorkload, config: PlanConfig, num_stages: int | None) -> KernelShape:
    rows = min(workload.group, common.Q_BLOCK_ROWS)
    block_m = max(16, 1 << (rows - 1).bit_length())
    d, warps = workload.head_dim, config.num_warps
    return KernelShape(block_m, common.kv_tile_tokens(workload, config), d, warps,
                       num_stages or DEFAULT_STAGES[strategy], merge_block(block_m, d, warps))


def resolve_config(strategy: str, workload: DecodeWorkload, config: PlanConfig | None,
                   num_warps: int | None) -> PlanConfig:
    """The plan config the kernel is compiled and planned with: our KV tile unless one is given,
    and `num_warps` (the launcher's argument, else the kernel's default; config.num_warps is not read)."""
    config = config or PlanConfig()
    check_workload(workload, config)
    tile = config.kv_tile_tokens or default_kv_tile_tokens(workload.head_dim, workload.dtype_bytes)
    return replace(config, kv_tile_tokens=tile, num_warps=num_warps or DEFAULT_WARPS[strategy])


def check_workload(workload: DecodeWorkload, config: PlanConfig) -> None:
    if workload.q_len != 1:
        raise InputError("q_len", f"the decode kernels take one query token, got {workload.q_len}")
    if workload.head_dim not in KERNEL_HEAD_DIMS:
        raise InputError("head_dim", f"{workload.head_dim} unsupported by the kernels; choose {KERNEL_HEAD_DIMS}")
    if workload.dtype not in TORCH_DTYPES:
        raise InputError("dtype", f"{workload.dtype} unsupported by the kernels; choose {', '.join(TORCH_DTYPES)}")
    tile = config.kv_tile_tokens
    if tile is not None and (tile < 16 or tile & (tile - 1)):
        raise InputError("kv_tile_tokens", f"must be a power of two >= 16, got {tile}")


def prepare(strategy: str, workload: DecodeWorkload, gpu: GpuSpec, config: PlanConfig | None = None,
            device="cuda", num_warps: int | None = None, num_stages: int | None = None,
            sm_scale: float | None = None) -> "Launcher":
    """Compile the strategy's kernel, plan the workload with its resources, upload the plan's tables.

    config: the plan's knobs (kv_tile_tokens, splits, grid); num_warps / num_stages: the kernel's
    (None: DEFAULT_WARPS / DEFAULT_STAGES); sm_scale: softmax scale (None: 1 / sqrt(head_dim)).
    """
    strategy = canonical_strategy(strategy)
    if strategy not in ATTENTION_KERNELS:
        raise InputError("strategy", f"{strategy!r} has no Triton kernel here; choose {', '.join(ATTENTION_KERNELS)}")
    config = resolve_config(strategy, workload, config, num_warps)
    shape = kernel_shape(strategy, workload, config, num_stages)
    device = torch.device(device)
    compiled = None
    if interpreting():
        patch_interpreter_index()
    else:
        compiled = compile_attention(strategy, workload, shape, device)
        config = replace(config, resources=CtaResources(
            threads=32 * compiled.metadata.num_warps, regs_per_thread=compiled.n_regs,
            smem_bytes=compiled.metadata.shared))
        if strategy == "streamk":
            check_device_fits(gpu, device)
    schedule = plan(strategy, workload, gpu, config)
    meta = dict(num_warps=shape.num_warps, num_stages=shape.num_stages, kv_tile=shape.block_n, block_m=shape.block_m,
                n_regs=getattr(compiled, "n_regs", None), n_spills=getattr(compiled, "n_spills", None),
                smem_bytes=compiled.metadata.shared if compiled is not None else None,
                grid=schedule.grid, splits=schedule.splits, launches=len(schedule.launches))
    scale = sm_scale if sm_scale is not None else 1.0 / math.sqrt(workload.head_dim)
    launcher = Launcher(strategy, schedule, common.resources(workload, config), meta, shape,
                        DeviceTables.build(schedule, shape.block_m, shape.block_p + 1, device), scale * LOG2_E)
    if compiled is not None and len(schedule.launches) > 1:
        launcher.warm_combine()
    return launcher


def compile_attention(strategy: str, workload: DecodeWorkload, shape: KernelShape, device: torch.device):
    """Compile (no launch) with the argument types and stride values a contiguous run passes."""
    dtype = TORCH_DTYPES[workload.dtype]
    d, hq, hkv, n = workload.head_dim, workload.q_heads, workload.kv_heads, workload.max_context
    strides = (hq * d, d, hkv * n * d, n * d, d, hkv * n * d, n * d, d, hq * d, d)
    i32, f32 = torch.int32, torch.float32
    pointers = {"fa2": (dtype,) * 4 + (i32,),
                "flashdecoding": (dtype,) * 4 + (i32,) * 2 + (f32, f32),
                "streamk": (dtype,) * 4 + (i32,) * 3 + (f32, f32)}[strategy]
    with torch.cuda.device(device):
        compiled = ATTENTION_KERNELS[strategy].warmup(*pointers, *strides, 1.0, workload.group, grid=(1,),
                                                      **shape.constexprs(strategy))
        compiled = compiled.result() if hasattr(compiled, "result") else compiled  # async-compile mode
        compiled._init_handles()  # Triton loads lazily; n_regs / n_spills are known once loaded
    return compiled


def check_device_fits(gpu: GpuSpec, device: torch.device) -> None:
    """Stream-K needs its whole grid resident: a spec with more SMs than the device could deadlock."""
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    if sms < gpu.sm_count:
        raise InputError("gpu", f"spec {gpu.name!r} has {gpu.sm_count} SMs but the device has {sms}; "
                                "stream-K's grid would not be co-resident")


class Launcher:
    """One planned, compiled decode attention. Not re-entrant: its partial slots and flags are its own."""

    def __init__(self, strategy: str, schedule: Schedule, resources: CtaResources, meta: dict, shape: KernelShape,
                 tables: DeviceTables, qk_scale: float):
        self.strategy, self.schedule, self.resources, self.meta = strategy, schedule, resources, meta
        self.shape, self.tables, self.qk_scale = shape, tables, qk_scale
        self.dtype = TORCH_DTYPES[schedule.workload.dtype]
        self.launch_attention = CachedLaunch(ATTENTION_KERNELS[strategy])
        self.launch_combine = CachedLaunch(flash_decoding.combine_kernel)

    def run(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
            out: torch.Tensor | None = None) -> torch.Tensor:
        """o [batch, q_heads, head_dim] = attention of q over the first contexts[i] tokens of the cache."""
        self.check_inputs(q, k_cache, v_cache, out)
        if out is None:
            out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        if self.dtype == torch.bfloat16 and interpreting():
            q = q.float()  # NumPy has no bf16 matmul: the dots run in fp32 (tiles.attend_tiles)
        t, group, grid = self.tables, self.schedule.workload.group, (self.schedule.grid,)
        tensors = (q, k_cache, v_cache, out)
        scalars = (q.stride(0), q.stride(1), *k_cache.stride()[:3], *v_cache.stride()[:3], out.stride(0),
                   out.stride(1), self.qk_scale, group)
        constexprs = self.shape.constexprs(self.strategy)
        if self.strategy == "fa2":
            self.launch_attention(grid, (*tensors, t.segments, *scalars), constexprs)
        elif self.strategy == "flashdecoding":
            self.launch_attention(grid, (*tensors, t.seg_offsets, t.segments, t.o_part, t.lse_part, *scalars),
                                  constexprs)
            if len(self.schedule.launches) > 1:
                self.combine(out)
        else:
            self.launch_attention(grid, (*tensors, t.seg_offsets, t.segments, t.flags, t.o_part, t.lse_part,
                                         *scalars), constexprs)
        return out

    def combine(self, out: torch.Tensor) -> None:
        t, s = self.tables, self.shape
        self.launch_combine(
            (len(self.schedule.reductions),),
            (out, t.reductions, t.peer_offsets, t.o_part, t.lse_part, out.stride(0), out.stride(1),
             self.schedule.workload.group),
            dict(BLOCK_P=merge_block(s.block_m, s.head_dim, COMBINE_WARPS), BLOCK_M=s.block_m,
                 HEAD_DIM=s.head_dim, num_warps=COMBINE_WARPS, num_stages=1))

    def warm_combine(self) -> None:
        """Compile the combine kernel now (run on a scratch output), not on the first timed call."""
        w = self.schedule.workload
        self.combine(torch.empty(w.batch, w.q_heads, w.head_dim, dtype=self.dtype, device=self.tables.flags.device))

    def check_inputs(self, q, k_cache, v_cache, out) -> None:
        w = self.schedule.workload
        want_q = (w.batch, w.q_heads, w.head_dim)
        if tuple(q.shape) != want_q:
            raise InputError("q", f"shape {tuple(q.shape)}, expected {want_q}")
        for name, cache in (("k_cache", k_cache), ("v_cache", v_cache)):
            b, h, n, d = cache.shape
            if (b, h, d) != (w.batch, w.kv_heads, w.head_dim) or n < w.max_context:
                raise InputError(name, f"shape {tuple(cache.shape)}, expected ({w.batch}, {w.kv_heads}, "
                                       f">= {w.max_context}, {w.head_dim})")
        for name, x in (("q", q), ("k_cache", k_cache), ("v_cache", v_cache), ("out", out)):
            if x is not None and (x.dtype != self.dtype or x.device != q.device or x.stride(-1) != 1):
                raise InputError(name, f"needs dtype {self.dtype}, device {q.device} and unit last stride")
        if out is not None and out.shape != q.shape:
            raise InputError("out", f"shape {tuple(out.shape)}, expected {want_q}")
