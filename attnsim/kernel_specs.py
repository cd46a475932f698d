"""Our Triton kernels as the registry names them (attnsim.strategies): module path, jit function,
default warps and stages, and what the launcher must know of each. Nothing here imports torch or
triton: the launcher loads a kernel by its module path."""

from __future__ import annotations

from dataclasses import dataclass

from attnsim.simulator.partition import options as opts


@dataclass(frozen=True)
class KernelSpec:
    """One of our Triton kernels. `name` keys its compiled resources (profile `kernels` tables)."""

    name: str
    module: str  # attnsim.kernels.<module>, exposing `function`
    function: str
    warps: int  # default num_warps (16 KB K tiles; H100 sweeps in scripts/kernel_check.py)
    stages: int = 3  # default num_stages: two K/V tiles in flight per CTA
    # Launched on a 2-D grid (outputs, splits) instead of (CTAs,): the program id says which split
    # of which output a program runs (kernels/split_kv.py); launch.launch_grid.
    split_grid: bool = False
    # An MLA kernel (kernels/mla_decode.py): reads one latent cache as K and V, takes the constexpr
    # LORA (kv_lora_rank), and its split plans merge through `combine` (module, function).
    mla: bool = False
    combine: tuple[str, str] = ("attnsim.kernels.flash_decoding", "combine_kernel")
    # ptxas's register cap (maxnreg) for 16-row query tiles (decode at group <= 16), None: ptxas decides.
    small_tile_max_registers: int | None = None
    # num_warps for an fp8 KV cache at 16 query rows, None: `warps` (measured per kernel: docs/kernels.md).
    fp8_small_tile_warps: int | None = None

    def max_registers(self, block_m: int, warps: int) -> int:
        """The cap the kernel compiles with at block_m query-tile rows and `warps` warps; 0: none. The cap
        keeps two CTAs of the default warps per SM; a CTA of fewer warps has the registers to spare."""
        return (self.small_tile_max_registers or 0) if block_m <= 16 and warps >= self.warps else 0

    def default_warps(self, block_m: int, fp8_kv: bool) -> int:
        """num_warps when the plan does not set it, for block_m query-tile rows and the cache's dtype."""
        return self.fp8_small_tile_warps if fp8_kv and block_m <= 16 and self.fp8_small_tile_warps else self.warps


FA2_KERNEL = KernelSpec("fa2_decode", "attnsim.kernels.fa2_decode", "fa2_decode_kernel", warps=4)
SPLIT_KERNEL = KernelSpec("flash_decoding", "attnsim.kernels.flash_decoding", "flash_decoding_kernel", warps=4)
# 8 warps: the same streaming rate as 4, half the registers per thread for its merges, and half the
# CTAs, so fewer peers per straddling output.
# 128 registers at 16 query rows keep two 8-warp CTAs per SM; ptxas alone gives its paged and fp8
# variants 150-200, one CTA (cross-compiled for sm_90: docs/kernels.md, "fp8 KV and paged KV"). The
# 4-warp fp8 kernel runs uncapped (d 128 bf16: 184-197 registers, no spills; two CTAs per SM by shared
# memory either way). Timed on the fp8 sweep (H200, results/h200/bench_fp8.csv against
# fp8_streamk_warps.csv, 8 warps as the bridge): 0.99x the capped time median, 2-4% faster below
# 256 MB, 2-5% slower at the largest points (docs/kernels.md).
# An fp8 cache at 16 rows streams faster at 4 warps (H200, the fp8 sweep's 47 fp8 points: 0.94x the
# 8-warp time median, 0.84x at 256 MB-1 GB; bf16 1.03x, so bf16 keeps 8; results/h200/fp8_streamk_warps.csv).
STREAMK_KERNEL = KernelSpec("lean_decode", "attnsim.kernels.lean_decode", "lean_decode_kernel", warps=8,
                            small_tile_max_registers=128, fp8_small_tile_warps=4)
# Stream-K's epilogue=last: the same tile loop, warps and cap, merged by the last arrival (kernels/lean_last.py).
STREAMK_LAST_KERNEL = KernelSpec("lean_last", "attnsim.kernels.lean_last", "lean_last_kernel", warps=8,
                                 small_tile_max_registers=128, fp8_small_tile_warps=4)
STREAMK_EPILOGUES = {opts.EPILOGUE_LAST: STREAMK_LAST_KERNEL}
SPLIT_KV_KERNEL = KernelSpec("split_kv", "attnsim.kernels.split_kv", "split_kv_kernel", warps=4, split_grid=True)
# Split-KV's fixed-chunk plans (chunk_tokens): one chunk per program in LPT order, merged by the last
# arrival: stream-K's last-arrival segment body, one segment per program, at split-KV's 4 warps
# (partition/splitkv.py, "Fixed chunks").
# Capped at 168 registers at 16 query rows, as ptxas compiles split_kv's tile loop: uncapped, its d 64
# 64-token-page variant took 184 (two CTAs per SM where the shared memory allows three).
SPLIT_KV_CHUNKS_KERNEL = KernelSpec("split_kv_chunks", "attnsim.kernels.lean_last", "one_segment_kernel", warps=4,
                                    small_tile_max_registers=168)
# MLA (kernels/mla_decode.py): one kernel for FA2-style and split plans, one that merges in-kernel for
# stream-K plans. 8 warps: acc [rows, 512] fp32 is 32 floats a thread per 16 rows (cross-compiled for
# sm_90: 128 registers at 16 rows, no spills; 4 warps needs 240-255).
MLA_COMBINE = ("attnsim.kernels.mla_decode", "mla_combine_kernel")
MLA_KERNEL = KernelSpec("mla_decode", "attnsim.kernels.mla_decode", "mla_decode_kernel", warps=8, mla=True,
                        combine=MLA_COMBINE)
MLA_STREAMK_KERNEL = KernelSpec("mla_lean", "attnsim.kernels.mla_decode", "mla_lean_kernel", warps=8, mla=True,
                                combine=MLA_COMBINE)
