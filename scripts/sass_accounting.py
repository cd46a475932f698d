"""Registers, spills, shared memory and the instruction mix of one KV tile of our decode kernels,
cross-compiled for sm_90 on a host without a GPU (Triton's bundled ptxas, cuobjdump and nvdisasm).

    PYTHONPATH=. python3 scripts/sass_accounting.py                      # docs/kernels.md's tables
    PYTHONPATH=. python3 scripts/sass_accounting.py fa2:d128:bfloat16:g8:p16:fp8 --dump /tmp/sass

A variant is strategy:d<head_dim>:<dtype>:g<group>[:q<q_len>][:p<page size>][:fp8][:n<tile>][:s<stages>][:w<warps>],
at the resolver's default tile / warps / stages unless given. The tile loop is the kernel's first
backward branch (attend_tiles' loop: one iteration per KV tile); its instructions are counted by
class. For a paged variant, `index first` says whether a block-table load precedes the first K/V
load of the same iteration (the K/V addresses wait on it) or comes after them (it fetches a later
tile's page while this one computes: hidden). Every figure is the compiler's, not a measurement.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compile_table import _workload, variant_shape  # noqa: E402
from cross_compile_serving import _signature, compile_sm90  # noqa: E402

# The comparisons docs/kernels.md reports: fp8 against its bf16 / fp16 twins, paged against contiguous.
DEFAULT = [f"{s}:d128:{t}:g8{v}" for s in ("fa2", "flashdecoding", "streamk", "splitkv")
           for t in ("bfloat16", "float16") for v in ("", ":fp8", ":p16", ":p64", ":p16:fp8", ":p128:fp8")]
CLASSES = {  # opcode prefix -> class; first match wins
    "LDGDEPBAR": "barrier", "LDGSTS": "global->shared", "LDG": "global load", "LDSM": "ldmatrix", "LDS.U8": "shared byte load",
    "LDS": "shared load", "STS": "shared store", "STSM": "shared store", "HMMA": "mma",
    "F2FP.F16.E4M3": "e4m3->f16x2", "F2F.BF16.F16": "f16->bf16", "F2FP": "pack", "PRMT": "byte permute",
    "MUFU.EX2": "exp2", "BAR": "barrier", "DEPBAR": "barrier",
}
_INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?);")
_LABEL = re.compile(r"^\s*(\.L_x_\d+):")


@dataclasses.dataclass(frozen=True)
class Variant:
    strategy: str
    head_dim: int
    dtype: str
    group: int
    q_len: int = 1
    page_size: int = 0
    kv_dtype: str = ""
    tile: int = 0  # 0: the resolver's default
    stages: int = 0
    warps: int = 0  # 0: the resolver's default

    @classmethod
    def parse(cls, text: str) -> "Variant":
        strategy, d, dtype, g, *rest = text.split(":")
        fields = dict(strategy=strategy, head_dim=int(d.lstrip("d")), dtype=dtype, group=int(g.lstrip("g")))
        for part in rest:
            if part == "fp8":
                fields["kv_dtype"] = "fp8"
            else:
                name = {"q": "q_len", "p": "page_size", "n": "tile", "s": "stages", "w": "warps"}[part[0]]
                fields[name] = int(part[1:])
        return cls(**fields)


def compile_variant(v: Variant):
    """(resolver key, KernelShape, CompiledKernel) of `v` for sm_90."""
    from attnsim import strategies
    from attnsim.kernels.launch import jit_function
    from attnsim.plans.resources import variant

    workload = _workload(v.head_dim, v.dtype, v.group, v.q_len, v.page_size, v.kv_dtype)
    kernel = strategies.get(v.strategy).kernel_for(workload)
    shape, _ = variant_shape(v.strategy, workload)
    warps = v.warps or shape.num_warps  # the given tile / stages / warps, and the cap the kernel takes at them
    shape = dataclasses.replace(shape, block_n=v.tile or shape.block_n, num_stages=v.stages or shape.num_stages,
                                num_warps=warps, max_registers=kernel.max_registers(shape.block_m, warps))
    key = variant(kernel.name, workload, shape.block_n, shape.num_warps, shape.num_stages).key
    fn = jit_function(kernel)
    sig, consts, attrs = _signature(fn, workload, shape)
    return key, shape, compile_sm90(fn, sig, consts, attrs, shape.num_warps, shape.num_stages, shape.max_registers)


def _tool(name: str, cubin: bytes, *flags: str) -> str:
    import triton

    path = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([str(path), *flags, f.name], capture_output=True, text=True, check=True).stdout


def instructions(sass: str) -> list[tuple[int, str]]:
    """[(address, instruction text)] of nvdisasm output; branch targets resolved to addresses."""
    out, labels, pending = [], {}, []
    for line in sass.splitlines():
        if (label := _LABEL.match(line)):
            pending.append(label.group(1))
        elif (m := _INSTRUCTION.search(line)):
            out.append((int(m.group(1), 16), m.group(2).strip()))
            labels.update((name, out[-1][0]) for name in pending)
            pending = []
    return [(a, re.sub(r"`\((\.L_x_\d+)\)", lambda m: f"{labels.get(m.group(1), 0):#x}", t)) for a, t in out]


def opcode(text: str) -> str:
    return re.sub(r"^@!?U?P\w+\s+", "", text).split()[0]


def tile_loop(ins: list[tuple[int, str]]) -> list[str]:
    """The instructions of the first loop (the first backward branch's range): attend_tiles' loop."""
    for address, text in ins:
        m = re.search(r"BRA\s+(0x[0-9a-f]+)", text)
        if m and int(m.group(1), 16) < address:
            return [t for a, t in ins if int(m.group(1), 16) <= a <= address]
    return []


def classify(op: str) -> str:
    return next((cls for prefix, cls in CLASSES.items() if op.startswith(prefix)), "other")


def index_first(loop: list[str]) -> bool | None:
    """Whether a 4-byte global load (a block-table entry) precedes the first 8/16-byte K/V load."""
    def kind(op: str) -> str:
        if not op.startswith(("LDG.", "LDGSTS.")):
            return ""
        return "kv" if op.endswith((".64", ".128")) else "index"

    kinds = [kind(opcode(t)) for t in loop]
    if "index" not in kinds or "kv" not in kinds:
        return None
    return kinds.index("index") < kinds.index("kv")


def account(v: Variant, dump: Path | None = None) -> dict:
    """One row: resources, occupancy on the H200 and the tile loop's instruction mix."""
    from attnsim.simulator.hardware import from_name
    from attnsim.simulator.occupancy import CtaResources, occupancy

    key, shape, compiled = compile_variant(v)
    regs, stack = map(int, re.search(r"REG:(\d+).*?STACK:(\d+)", _tool("cuobjdump", compiled.asm["cubin"],
                                                                      "-res-usage"), re.S).groups())
    sass = _tool("nvdisasm", compiled.asm["cubin"], "-c")
    if dump:
        dump.mkdir(parents=True, exist_ok=True)
        (dump / (key.replace("/", "_") + ".sass")).write_text(sass)
    loop = tile_loop(instructions(sass))
    mix = collections.Counter(classify(opcode(t)) for t in loop)
    loads = collections.Counter(opcode(t) for t in loop if opcode(t).startswith(("LDG.", "LDGSTS.")))
    ctas = occupancy(from_name("h200"), CtaResources(32 * shape.num_warps, regs, compiled.metadata.shared))
    return dict(variant=key, regs=regs, stack=stack, smem=compiled.metadata.shared, ctas_per_sm=ctas.blocks_per_sm,
                tile=shape.block_n, loop=len(loop), per_token=round(len(loop) / shape.block_n, 2),
                kv_bytes_per_instr=round(2 * shape.block_n * shape.head_dim * (1 if v.kv_dtype else 2) / len(loop), 1)
                if loop else 0, mix=dict(mix.most_common()), global_loads=dict(loads), index_first=index_first(loop))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help="strategy:d128:bfloat16:g8[:q2][:p16][:fp8][:n64][:s4]")
    parser.add_argument("--dump", type=Path, help="write each variant's SASS here")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    from concurrent.futures import ProcessPoolExecutor

    variants = [Variant.parse(t) for t in args.variants or DEFAULT]
    print("| variant | regs | stack B | smem B | CTAs/SM | tile | loop instr | instr/token | KV B/instr "
          "| index first | global loads | mix |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    with ProcessPoolExecutor(args.jobs) as pool:
        for r in pool.map(account, variants, [args.dump] * len(variants)):
            loads = ", ".join(f"{k} {n}" for k, n in r["global_loads"].items())
            mix = ", ".join(f"{k} {n}" for k, n in r["mix"].items() if k != "other")
            print(f"| {r['variant']} | {r['regs']} | {r['stack']} | {r['smem']} | {r['ctas_per_sm']} | {r['tile']} "
                  f"| {r['loop']} | {r['per_token']} | {r['kv_bytes_per_instr']} | {r['index_first']} | {loads} "
                  f"| {mix} |", flush=True)


if __name__ == "__main__":
    main()
