"""The one resources resolver: what one CTA of a kernel variant asks of an SM (threads, registers,
shared memory), and so how many CTAs are resident — for the planner, the simulator and the launcher.

A kernel variant is (kernel, head_dim, dtype, query-tile rows, warps, stages, KV tile, page size,
KV dtype, q_len, latent rank); its key reads 'lean_decode/d128/float16/m16/w8/s3/n64' plus '/p16'
(paged), '/kvfloat8_e4m3fn' (fp8 KV), '/q4' (verify) and '/r512' (an MLA kernel's kv_lora_rank:
'mla_lean/d576/bfloat16/m16/w8/s5/n32/p64/r512'). Resources are looked up, in order:
1. the GPU profile's recorded kernels (compiled on that GPU by `attnsim calibrate`), then the
   compiled-resources table shipped for its compute capability (`attnsim/profiles/kernels_sm90.json`,
   recorded from Triton's compiler; sm_90's stands in for other GPUs): the exact key;
2. else the closest compiled siblings, relaxing one field at a time, least decisive first: the page
   size (paged stays paged), q_len (the query tile stays; verify stays verify), the pipeline
   stages, the KV tile (to larger ones only: a larger tile never needs fewer registers), the dtype
   (fp16/bf16). Kernel, head dim, query-tile rows, warps, KV dtype and paging are never relaxed:
   they move registers most (fp8 dequantisation alone takes ~90 more). Of the siblings at the first
   level that has any, the most registers and shared memory are taken (the K/V buffers re-counted
   for the wanted stages and tile), so a fallback never promises more CTAs per SM than a compiled
   sibling of the same pipeline shape has (leave-one-out over the shipped table: never);
3. else an estimate: shared memory from the tile loop's buffers, registers the most any compiled
   variant of the kernel at those warps uses (128 when none is compiled).
The launcher compiles the variant on the device and asserts the plan still launches (launch.py).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources as package_files

from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.occupancy import CtaResources, occupancy
from attnsim.simulator.workload import DecodeWorkload, query_tile_rows

K_TILE_BYTES = 16 * 1024  # our kernels' default KV tile: one 16 KB K tile (64 tokens at d 128, fp16; 128 at fp8)
# A paged tile's K/V address depends on a block-table load, which Triton's pipeliner schedules a stage
# earlier: at the kernels' 3 stages it keeps one K/V buffer, at 5 two, as the contiguous loop at 3
# (compiled for sm_90: 72 KB of shared memory either way). So paged kernels default to 2 more stages.
PAGED_EXTRA_STAGES = 2
COMBINE_KERNEL = "combine"
COMBINE_WARPS = 8
COMPILED_TABLES = {(9, 0): "kernels_sm90.json"}
ESTIMATED_REGISTERS = 128  # a kernel with no compiled variant at all
_KEY = re.compile(r"^(?P<kernel>[a-z0-9_]+)/d(?P<head_dim>\d+)/(?P<dtype>[a-z0-9_]+)/m(?P<block_m>\d+)"
                  r"/w(?P<warps>\d+)/s(?P<stages>\d+)/n(?P<tile>\d+)(?:/p(?P<page_size>\d+))?"
                  r"(?:/kv(?P<kv_dtype>[a-z0-9_]+))?(?:/q(?P<q_len>\d+))?(?:/r(?P<lora>\d+))?$")
MLA_COMBINE_KERNEL = "mla_combine"  # the combine launch of MLA split plans (kernels/mla_decode.py)
# An MLA kernel's KV tile: 32 latent tokens, 36 KB at 512 + 64 bf16 (two in flight per CTA at 3
# stages, two CTAs per SM: cross-compiled for sm_90, 91 KB of shared memory and 128 registers at 16
# rows); it lies inside one 64-token page of the engines' latent caches.
MLA_KV_TILE_TOKENS = 32


@dataclass(frozen=True)
class Variant:
    """One compiled shape of one kernel: what its CTA's resources depend on."""

    kernel: str
    head_dim: int
    dtype: str
    block_m: int  # query-tile rows (workload.query_tile_rows)
    warps: int
    stages: int
    tile: int  # KV tokens per tile (0 for the combine kernel)
    page_size: int = 0
    kv_dtype: str = ""  # "" = the dtype's
    q_len: int = 1
    lora: int = 0  # an MLA kernel's kv_lora_rank (its latent tile: lora + rope = head_dim elements a token)

    @property
    def key(self) -> str:
        return (f"{self.kernel}/d{self.head_dim}/{self.dtype}/m{self.block_m}/w{self.warps}/s{self.stages}"
                f"/n{self.tile}" + f"/p{self.page_size}" * bool(self.page_size) + f"/kv{self.kv_dtype}" * bool(self.kv_dtype)
                + f"/q{self.q_len}" * (self.q_len > 1) + f"/r{self.lora}" * bool(self.lora))

    @classmethod
    def parse(cls, key: str) -> "Variant | None":
        match = _KEY.match(key)
        if match is None:
            return None
        f = match.groupdict()
        return cls(f["kernel"], int(f["head_dim"]), f["dtype"], int(f["block_m"]), int(f["warps"]),
                   int(f["stages"]), int(f["tile"]), int(f["page_size"] or 0), f["kv_dtype"] or "", int(f["q_len"] or 1),
                   int(f["lora"] or 0))


def variant(kernel: str, workload: DecodeWorkload, tile: int, warps: int, stages: int) -> Variant:
    """The compiled shape: a head dim our kernels pad (96 -> 128: kernels/tiles.py, D_VALID) runs the padded width's
    tile loop, masked at its loads and stores, so it takes that variant's resources."""
    return Variant(kernel, workload.tile_head_dim, workload.dtype, query_tile_rows(workload), warps, stages, tile,
                   workload.page_size, workload.kv_dtype, workload.q_len, workload.kv_lora_rank)


def combine_variant(workload: DecodeWorkload) -> Variant:
    """The combine kernel reads fp32 partials: only the query tile (q_len x group rows) and the
    partials' width matter (MLA: its own combine over kv_lora_rank-wide partials)."""
    kernel = MLA_COMBINE_KERNEL if workload.is_mla else COMBINE_KERNEL
    return Variant(kernel, workload.partial_dim, workload.dtype, query_tile_rows(workload), COMBINE_WARPS,
                   1, 0, q_len=workload.q_len)


# Fields relaxed one at a time, cumulatively, when no compiled entry matches exactly.
RELAXED = ("page_size", "q_len", "stages", "tile", "dtype")


def _same(a: Variant, b: Variant, relaxed: tuple[str, ...]) -> bool:
    """Compiled variant `a` can stand in for wanted `b`: they agree on every field not relaxed; a
    relaxed page size keeps paging (0 or not), a relaxed q_len keeps verify (1 or not: its causal
    mask takes registers), a relaxed tile is at least b's (a larger tile never needs fewer registers)."""
    for name in ("kernel", "head_dim", "dtype", "block_m", "warps", "stages", "tile", "page_size", "kv_dtype",
                 "q_len", "lora"):
        x, y = getattr(a, name), getattr(b, name)
        if name in relaxed:
            if (name == "page_size" and bool(x) != bool(y)) or (name == "q_len" and (x > 1) != (y > 1)) \
                    or (name == "tile" and x < y):
                return False
            continue
        if x != y:
            return False
    return True


def worst_of(entries: list[tuple[Variant, dict]], wanted: Variant) -> CtaResources:
    """The fewest CTAs per SM any of the compiled `entries` allows for `wanted`: their most registers,
    and their most shared memory with the K/V buffers re-counted for wanted's stages and tile (the
    rest — query tile, epilogue — is the sibling's)."""
    smem = [int(e["smem_bytes"]) - kv_buffer_bytes(v) + kv_buffer_bytes(wanted) for v, e in entries]
    return CtaResources(int(entries[0][1]["threads"]), max(int(e["regs_per_thread"]) for _, e in entries), max(smem))


def kv_buffer_bytes(v: Variant) -> int:
    """Shared memory of the tile loop's K/V buffers: (stages - 1) K+V tiles in flight, one fewer when
    paged (the block-table load takes a stage), at least one; an MLA kernel's tile is one latent tile.
    An fp8 cache adds one fp16 V tile: V converted, then staged for ldmatrix.trans (tiles.opaque_move)."""
    fp8 = v.kv_dtype.startswith("float8")
    buffers = max(1, v.stages - 1 - (PAGED_EXTRA_STAGES if v.page_size else 0))
    staged_v = 2 * v.tile * v.head_dim if fp8 and not v.lora else 0
    return buffers * (1 if v.lora else 2) * v.tile * v.head_dim * (1 if fp8 else 2) + staged_v


def lookup(gpu: GpuSpec, wanted: Variant) -> tuple[CtaResources, str]:
    """(resources, source) of `wanted` on `gpu`: exact, else the closest compiled siblings, else an
    estimate (module docstring)."""
    tables = ((gpu.kernels or {}, "profile"), (compiled_table(tuple(gpu.compute_capability)), "compiled table"))
    for table, source in tables:
        entry = table.get(wanted.key)
        if entry:
            return worst_of([(wanted, entry)], wanted), source
    for level in range(1, len(RELAXED) + 1):
        relaxed = RELAXED[:level]
        for table, source in tables:
            siblings = [(v, e) for v, e in _parsed(table) if _same(v, wanted, relaxed)]
            if siblings:
                return worst_of(siblings, wanted), f"{source} (siblings: any {', '.join(relaxed)})"
    return estimated(gpu, wanted), "estimate"


def estimated(gpu: GpuSpec, wanted: Variant) -> CtaResources:
    """Triton's shared memory for our tile loop: (stages - 1) K+V tiles in flight (one fewer when paged:
    the block-table load takes a stage) plus a small epilogue buffer (matches the compiled d64/d128
    kernels); registers: the most any compiled variant of the kernel at these warps uses."""
    smem = kv_buffer_bytes(wanted) + 6144 if wanted.tile else 0
    known = [int(e["regs_per_thread"]) for table in (gpu.kernels or {}, compiled_table(tuple(gpu.compute_capability)))
             for v, e in _parsed(table) if v.kernel == wanted.kernel and v.warps == wanted.warps]
    return CtaResources(32 * wanted.warps, max(known, default=ESTIMATED_REGISTERS), smem)


@functools.lru_cache(maxsize=8)
def compiled_table(compute_capability: tuple[int, int]) -> dict:
    """The shipped compiled-resources table for a compute capability (sm90's stands in for others)."""
    name = COMPILED_TABLES.get(tuple(compute_capability), COMPILED_TABLES[(9, 0)])
    path = package_files.files("attnsim") / "profiles" / name
    return json.loads(path.read_text())["kernels"] if path.is_file() else {}


_PARSED: dict[int, tuple[dict, list]] = {}  # id(table) -> (table, [(Variant, entry)]): tables live per process


def _parsed(table: dict) -> list[tuple[Variant, dict]]:
    cached = _PARSED.get(id(table))
    if cached is None or cached[0] is not table:
        if len(_PARSED) > 64:
            _PARSED.clear()
        cached = (table, [(v, e) for k, e in table.items() if e and (v := Variant.parse(k)) is not None])
        _PARSED[id(table)] = cached
    return cached[1]


def default_kv_tile_tokens(workload: DecodeWorkload) -> int:
    """16 KB of K in the cache's dtype, at the tiles' padded width (tile_head_dim): the bytes in flight that
    set a CTA's latency-bound streaming rate stay the same for fp8. Tiles and pages are powers of two, so
    a tile holds whole pages or lies inside one: the plans need no other alignment (a page index per tile
    or per page). MLA: MLA_KV_TILE_TOKENS."""
    if workload.is_mla:
        return MLA_KV_TILE_TOKENS
    return max(16, K_TILE_BYTES // (workload.tile_head_dim * workload.kv_dtype_bytes))


def default_stages(kernel_stages: int, workload: DecodeWorkload) -> int:
    """The registry's pipeline depth, PAGED_EXTRA_STAGES deeper for a paged cache."""
    return kernel_stages + (PAGED_EXTRA_STAGES if workload.paged else 0)


def stream_warps(kernel, workload: DecodeWorkload, tile: int, stages: int) -> float:
    """Warps at the kernel's default shape (kernel: a strategies.KernelSpec) that stream as fast alone as
    a CTA of this tile and pipeline depth: kernel.warps x its K/V tiles in flight x tile / the default's.
    A lone CTA is latency-bound, its rate its bytes in flight over the latency, whatever its warps: stream-K's
    bf16 kernel timed at 4 and 8 warps ran within 3% (docs/kernels.md), and its 4-warp fp8 kernel keeps the
    8-warp bf16 one's 16 KB K tiles. Tiles in flight: stages - 1 (the stage being computed holds none),
    less a paged cache's extra index stages, at least 1."""
    def in_flight(tile_tokens: int, depth: int) -> int:
        return max(1, depth - 1 - (PAGED_EXTRA_STAGES if workload.paged else 0)) * tile_tokens
    default = in_flight(default_kv_tile_tokens(workload), default_stages(kernel.stages, workload))
    return kernel.warps * in_flight(tile, stages) / default


@dataclass(frozen=True)
class ResolvedShape:
    """A kernel's resolved compile shape and its CTA's resources."""

    tile: int
    warps: int
    stages: int
    resources: CtaResources
    source: str  # profile | compiled table[ (siblings ...)] | estimate | given


def kernel_shape(kernel, workload: DecodeWorkload, gpu: GpuSpec, tile: int | None = None, warps: int | None = None,
                 stages: int | None = None, given: CtaResources | None = None) -> ResolvedShape:
    """The user's tile / warps / stages, else the kernel's defaults (kernel: a strategies.KernelSpec),
    with fewer pipeline stages and then smaller tiles (never below 16 tokens, never overriding what
    the user set) until one CTA fits an SM — what a kernel author does for a GPU with less shared
    memory (e.g. d 256 on an L40S). `given`: resources already known (a measured row)."""
    warps = warps or kernel.default_warps(query_tile_rows(workload), workload.kv_fp8)
    shape_tile, shape_stages = tile or default_kv_tile_tokens(workload), stages or default_stages(kernel.stages, workload)
    if given is not None:
        return ResolvedShape(shape_tile, warps, shape_stages, given, "given")
    res, source = lookup(gpu, variant(kernel.name, workload, shape_tile, warps, shape_stages))
    while occupancy(gpu, res).blocks_per_sm == 0:
        if stages is None and shape_stages > 1:
            shape_stages -= 1
        elif tile is None and shape_tile > 16:
            shape_tile //= 2
        else:
            break  # nothing left to shrink: the plan reports that the CTA cannot launch
        res, source = lookup(gpu, variant(kernel.name, workload, shape_tile, warps, shape_stages))
    return ResolvedShape(shape_tile, warps, shape_stages, res, source)


def combine_resources(workload: DecodeWorkload, gpu: GpuSpec) -> CtaResources:
    res, source = lookup(gpu, combine_variant(workload))
    return res if source != "estimate" else CtaResources(32 * COMBINE_WARPS, 32, 0)
