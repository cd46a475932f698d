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
import os
from dataclasses import dataclass, replace

import numpy as np
import torch

from attnsim.errors import InputError
from attnsim.kernels import fa2_decode, flash_decoding, lean_decode, tiles
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources
from attnsim.simulator.partition import canonical_strategy, common, plan
from attnsim.simulator.partition.common import PlanConfig
from attnsim.simulator.schedule import ROLE_HOST, ROLE_PEER, Schedule
from attnsim.simulator.workload import DecodeWorkload

KERNEL_HEAD_DIMS = (32, 64, 128, 256)
TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
ATTENTION_KERNELS = {"fa2": fa2_decode.fa2_decode_kernel, "flashdecoding": flash_decoding.flash_decoding_kernel,
                     "streamk": lean_decode.lean_decode_kernel}
LOG2_E = 1.4426950408889634


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


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

    group: int  # q-heads per kv-head
    block_m: int  # query-tile rows: the group (<= Q_BLOCK_ROWS) padded to a power of two >= 16 (tl.dot)
    block_n: int  # KV tokens per tile = the plan's kv_tile_tokens
    head_dim: int
    num_warps: int
    num_stages: int

    def constexprs(self) -> dict:
        return dict(GROUP=self.group, BLOCK_M=self.block_m, BLOCK_N=self.block_n, HEAD_DIM=self.head_dim,
                    num_warps=self.num_warps, num_stages=self.num_stages)


def default_kv_tile_tokens(head_dim: int) -> int:
    """Our kernels' KV tile (may differ from FA2's kBlockN): see scripts/kernel_check.py for the sweep."""
    return common.fa2_block_n(head_dim)


def default_num_stages(head_dim: int) -> int:
    return 2


def kernel_shape(workload: DecodeWorkload, config: PlanConfig, num_stages: int | None) -> KernelShape:
    rows = min(workload.group, common.Q_BLOCK_ROWS)
    block_m = max(16, 1 << (rows - 1).bit_length())
    return KernelShape(workload.group, block_m, common.kv_tile_tokens(workload, config), workload.head_dim,
                       config.num_warps, num_stages or default_num_stages(workload.head_dim))


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
            device="cuda", num_stages: int | None = None, sm_scale: float | None = None) -> "Launcher":
    """Compile the strategy's kernel, plan the workload with its resources, upload the plan's tables."""
    strategy = canonical_strategy(strategy)
    if strategy not in ATTENTION_KERNELS:
        raise InputError("strategy", f"{strategy!r} has no Triton kernel here; choose {', '.join(ATTENTION_KERNELS)}")
    config = config or PlanConfig()
    check_workload(workload, config)
    if config.kv_tile_tokens is None:
        config = replace(config, kv_tile_tokens=default_kv_tile_tokens(workload.head_dim))
    shape = kernel_shape(workload, config, num_stages)
    device = torch.device(device)
    if interpreting():
        patch_interpreter_index()
    compiled = None if interpreting() else compile_attention(strategy, workload, shape, device)
    if compiled is not None:
        config = replace(config, resources=CtaResources(
            threads=32 * compiled.metadata.num_warps, regs_per_thread=compiled.n_regs,
            smem_bytes=compiled.metadata.shared))
    if strategy == "streamk" and not interpreting():
        check_device_fits(gpu, device)
    schedule = plan(strategy, workload, gpu, config)
    if strategy == "streamk":
        check_streamk_order(schedule)
    meta = dict(num_warps=shape.num_warps, num_stages=shape.num_stages, kv_tile=shape.block_n, block_m=shape.block_m,
                n_regs=getattr(compiled, "n_regs", None), n_spills=getattr(compiled, "n_spills", None),
                smem_bytes=compiled.metadata.shared if compiled is not None else None,
                grid=schedule.grid, splits=schedule.splits, launches=len(schedule.launches))
    scale = sm_scale if sm_scale is not None else 1.0 / math.sqrt(workload.head_dim)
    launcher = Launcher(strategy, schedule, common.resources(workload, config), meta, shape,
                        DeviceTables.build(schedule, shape, device), scale * LOG2_E, device)
    if compiled is not None and len(schedule.launches) > 1:
        launcher.warm_combine()
    return launcher


def compile_attention(strategy: str, workload: DecodeWorkload, shape: KernelShape, device: torch.device):
    """Compile (no launch) with the argument types and stride values a contiguous run passes."""
    dtype = TORCH_DTYPES[workload.dtype]
    d, hq, hkv, n = workload.head_dim, workload.q_heads, workload.kv_heads, workload.max_context
    strides = (hq * d, d, hkv * n * d, n * d, d, hkv * n * d, n * d, d, hq * d, d)
    i32, f32 = torch.int32, torch.float32
    pointers = {"fa2": (dtype,) * 4 + (i32, i32),
                "flashdecoding": (dtype,) * 4 + (i32,) * 3 + (f32, f32),
                "streamk": (dtype,) * 4 + (i32,) * 6 + (f32, f32)}[strategy]
    with torch.cuda.device(device):
        compiled = ATTENTION_KERNELS[strategy].warmup(*pointers, *strides, 1.0, grid=(1,), **shape.constexprs())
        compiled._init_handles()  # Triton loads lazily; n_regs / n_spills are known once loaded
    return compiled


def check_device_fits(gpu: GpuSpec, device: torch.device) -> None:
    """Stream-K needs its whole grid resident: a spec with more SMs than the device could deadlock."""
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    if sms < gpu.sm_count:
        raise InputError("gpu", f"spec {gpu.name!r} has {gpu.sm_count} SMs but the device has {sms}; "
                                "stream-K's grid would not be co-resident")


def check_streamk_order(schedule: Schedule) -> None:
    """The in-kernel reduction's safety conditions: one peer segment per program, peers below hosts."""
    segs, red = schedule.attention.segments, schedule.reductions
    if np.bincount(segs.cta[segs.role == ROLE_PEER], minlength=1).max(initial=0) > 1:
        raise RuntimeError("stream-K plan gives a program two peer segments (one partial slot each)")
    host_of_peer = np.repeat(red.host_cta, np.diff(red.peer_offsets))
    if (red.peer_cta >= host_of_peer).any():
        raise RuntimeError("stream-K plan has a host waiting on a higher program id (may deadlock)")


@dataclass(frozen=True)
class DeviceTables:
    """The plan as int32 device tensors, built once (rows follow tiles.SEG_* columns)."""

    seg_offsets: torch.Tensor  # [grid + 1]
    segments: torch.Tensor  # [n_segments, SEG_COLS]
    reductions: torch.Tensor  # [n_reductions, SEG_COLS]: seq, kv_head, q_block
    peer_offsets: torch.Tensor  # [n_reductions + 1]
    peer_cta: torch.Tensor  # [n_peers]
    lengths: torch.Tensor  # [batch] tokens per sequence
    o_part: torch.Tensor  # fp32 [slots, BLOCK_M, head_dim] partial slots (slot = program id)
    lse_part: torch.Tensor  # fp32 [slots, BLOCK_M]
    flags: torch.Tensor  # int32 [grid], 0 between launches (stream-K)

    @staticmethod
    def build(schedule: Schedule, shape: KernelShape, device: torch.device) -> "DeviceTables":
        segs, red, grid = schedule.attention.segments, schedule.reductions, schedule.grid
        cols = int(tiles.SEG_COLS.value)
        rows = np.zeros((len(segs), cols), np.int64)
        rows[:, :6] = np.stack([segs.seq, segs.kv_head, segs.q_block, segs.first_tile, segs.n_tiles, segs.role], 1)
        rows[:, tiles.SEG_REDUCTION.value] = host_reduction_rows(schedule)
        red_rows = np.zeros((len(red), cols), np.int64)
        red_rows[:, :3] = np.stack([red.seq, red.kv_head, red.q_block], 1).reshape(len(red), 3)
        slots = grid if len(red) else 1
        as_i32 = lambda a: torch.from_numpy(np.array(a, dtype=np.int32)).to(device)  # noqa: E731
        return DeviceTables(
            seg_offsets=as_i32(segs.offsets(grid)), segments=as_i32(rows), reductions=as_i32(red_rows),
            peer_offsets=as_i32(red.peer_offsets), peer_cta=as_i32(red.peer_cta),
            lengths=as_i32(schedule.workload.contexts),
            o_part=torch.zeros(slots, shape.block_m, shape.head_dim, dtype=torch.float32, device=device),
            lse_part=torch.zeros(slots, shape.block_m, dtype=torch.float32, device=device),
            flags=torch.zeros(max(grid, 1), dtype=torch.int32, device=device),
        )


def host_reduction_rows(schedule: Schedule) -> np.ndarray:
    """For each segment: the Reductions row it hosts (ROLE_HOST), else -1."""
    segs, red = schedule.attention.segments, schedule.reductions
    row_of = {(int(c), int(s), int(h), int(b)): r for r, (c, s, h, b) in
              enumerate(zip(red.host_cta, red.seq, red.kv_head, red.q_block)) if c >= 0}
    out = np.full(len(segs), -1, np.int64)
    for i in np.flatnonzero(segs.role == ROLE_HOST):
        out[i] = row_of[(int(segs.cta[i]), int(segs.seq[i]), int(segs.kv_head[i]), int(segs.q_block[i]))]
    return out


class Launcher:
    """One planned, compiled decode attention. Not re-entrant: its partial slots and flags are its own."""

    def __init__(self, strategy: str, schedule: Schedule, resources: CtaResources, meta: dict, shape: KernelShape,
                 tables: DeviceTables, qk_scale: float, device: torch.device):
        self.strategy, self.schedule, self.resources, self.meta = strategy, schedule, resources, meta
        self.shape, self.tables, self.qk_scale, self.device = shape, tables, qk_scale, device
        self.dtype = TORCH_DTYPES[schedule.workload.dtype]

    def run(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
            out: torch.Tensor | None = None) -> torch.Tensor:
        """o [batch, q_heads, head_dim] = attention of q over the first contexts[i] tokens of the cache."""
        self.check_inputs(q, k_cache, v_cache, out)
        if out is None:
            out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        if self.dtype == torch.bfloat16 and interpreting():
            q = q.float()  # NumPy has no bf16 matmul: the dots run in fp32 (tiles.attend_tiles)
        t, s = self.tables, self.shape
        tensors = (q, k_cache, v_cache, out, t.lengths)
        strides = (q.stride(0), q.stride(1), *k_cache.stride()[:3], *v_cache.stride()[:3], out.stride(0), out.stride(1))
        grid = (self.schedule.grid,)
        if self.strategy == "fa2":
            fa2_decode.fa2_decode_kernel[grid](*tensors, t.segments, *strides, self.qk_scale, **s.constexprs())
        elif self.strategy == "flashdecoding":
            flash_decoding.flash_decoding_kernel[grid](*tensors, t.seg_offsets, t.segments, t.o_part, t.lse_part,
                                                       *strides, self.qk_scale, **s.constexprs())
            if len(self.schedule.launches) > 1:
                self.combine(out)
        else:
            lean_decode.lean_decode_kernel[grid](*tensors, t.seg_offsets, t.segments, t.peer_offsets, t.peer_cta,
                                                 t.flags, t.o_part, t.lse_part, *strides, self.qk_scale,
                                                 **s.constexprs())
        return out

    def combine(self, out: torch.Tensor) -> None:
        t, s = self.tables, self.shape
        flash_decoding.combine_kernel[(len(self.schedule.reductions),)](
            out, t.reductions, t.peer_offsets, t.peer_cta, t.o_part, t.lse_part, out.stride(0), out.stride(1),
            GROUP=s.group, BLOCK_M=s.block_m, HEAD_DIM=s.head_dim, num_warps=4, num_stages=1)

    def warm_combine(self) -> None:
        """Compile the combine kernel now (launching it on a scratch output), not on the first timed run."""
        w = self.schedule.workload
        self.combine(torch.empty(w.batch, w.q_heads, w.head_dim, dtype=self.dtype, device=self.device))

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
            if x is None:
                continue
            if x.dtype != self.dtype or x.device != q.device or x.stride(-1) != 1:
                raise InputError(name, f"needs dtype {self.dtype}, device {q.device} and unit last stride")
        if out is not None and out.shape != q.shape:
            raise InputError("out", f"shape {tuple(out.shape)}, expected {want_q}")
