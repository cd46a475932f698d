"""Compiled resources of the serving kernel variants, cross-compiled for sm_90 on a host without a GPU.

    PYTHONPATH=. python3 scripts/cross_compile_serving.py --table attnsim/profiles/kernels_sm90.json

`scripts/compile_table.py` records what our kernels ask of an SM by compiling on the device; this
compiles the same kernels with the same Triton (its bundled ptxas) for target sm_90 through
`triton.compile`, specialising the arguments as the JIT does for a run (pointers 16-byte aligned,
integers divisible by 16 marked so, integers equal to 1 folded), and reads registers from the cubin
(cuobjdump) and shared memory from the compile's metadata. It first recompiles the contiguous
decode kernels already in the table and stops unless each matches the device's entry; then it adds
the missing entries (a new kernel's decode variants, compile_table's HEAD_DIMS x DTYPES x GROUPS, and
every kernel's SERVING_VARIANTS), each marked with its provenance (with --replace, also those
cross-compiled on an earlier day: after a change to the kernels; head dim 128, 16 query rows and bf16
first, the table rewritten every few entries, so an interrupted run keeps what it compiled and a rerun
the same day goes on from there). The device run of compile_table.py replaces them all.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compile_table import (  # noqa: E402
    DTYPES, GROUPS, HEAD_DIMS, SERVING_HEAD_DIMS, SERVING_VARIANTS, _workload, combine_function, combine_jobs,
    kernel_specs, spec_config, variant_shape,
)

TRITON_DTYPES = {"float16": "fp16", "bfloat16": "bf16", "float8_e4m3fn": "fp8e4nv"}
_STAMP = time.strftime("%Y-%m-%d")  # the day's compiles carry it in their source
CHECK = [(kernel, 128, dtype, group) for kernel in ("fa2", "flashdecoding", "streamk") for dtype in DTYPES
         for group in (8, 64)]


def _signature(fn, workload, shape):
    """(signature, constexprs, attrs) of a packed run of `workload` (launch.compile_attention's arguments)."""
    from attnsim.kernels.launch import block_table_stride, kv_strides

    q, kv = TRITON_DTYPES[workload.dtype], TRITON_DTYPES[workload.cache_dtype]
    pointers = dict(q_ptr=q, k_ptr=kv, v_ptr=kv, o_ptr=q, seg_offsets_ptr="i32", seg_ptr="i32", flags_ptr="i32",
                    o_part_ptr="fp32", lse_part_ptr="fp32", bt_ptr="i32", k_scale_ptr="fp32", v_scale_ptr="fp32")
    d, dv, hq, ql = workload.head_dim, workload.v_dim, workload.q_heads, workload.q_len  # dv: o's width (MLA: 512)
    values = dict(zip(("stride_qb", "stride_qh", "stride_qi"), (hq * ql * d, ql * d, d)))
    values.update(zip(("stride_kb", "stride_kh", "stride_kn"), kv_strides(workload)))
    values.update(zip(("stride_vb", "stride_vh", "stride_vn"), kv_strides(workload)))
    values.update(stride_ob=hq * ql * dv, stride_oh=ql * dv, stride_oi=dv, stride_bt=block_table_stride(workload),
                  group=workload.group)
    consts = dict(shape.constexprs())
    for option in ("num_warps", "num_stages", "maxnreg"):
        consts.pop(option, None)
    return specialise(fn, pointers, values, consts)


def specialise(fn, pointers: dict, values: dict, consts: dict):
    """(signature, constexprs, attrs) as the JIT specialises a run: pointers 16-byte aligned, fp32
    `qk_scale`, integers equal to 1 folded into constexprs, integers divisible by 16 marked so."""
    consts, sig, attrs = dict(consts), {}, {}
    defaults = {p.name: p.default for p in fn.params if p.is_constexpr and p.default is not inspect.Parameter.empty}
    for i, name in enumerate(fn.arg_names):
        if name not in consts and name in defaults:  # a constexpr the launch leaves at its default (D_VALID)
            consts[name] = defaults[name]
        if name in pointers:
            sig[name], attrs[(i,)] = "*" + pointers[name], [["tt.divisibility", 16]]
        elif name == "qk_scale":
            sig[name] = "fp32"
        elif name in consts:
            sig[name] = "constexpr"
        elif values[name] == 1:
            sig[name], consts[name] = "constexpr", 1
        else:
            sig[name] = "i32"
            if values[name] % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
    return sig, consts, attrs


def _resources(strategy: str, workload) -> tuple[str, dict]:
    """(resolver key, {threads, regs_per_thread, smem_bytes, spills}): the larger of group == 1 and group."""
    from attnsim.kernels.launch import jit_function

    shape, key = variant_shape(strategy, workload)
    fn = jit_function(spec_config(strategy, workload)[2])
    regs = smem = stack = 0
    for group in (1, workload.group):
        w = _workload(workload.head_dim, workload.dtype, group, workload.q_len, workload.page_size, workload.kv_dtype,
                      workload.kv_lora_rank)
        sig, consts, attrs = _signature(fn, w, shape)
        r, s, shared = cross_compile(fn, sig, consts, attrs, shape.num_warps, shape.num_stages, shape.max_registers)
        regs, stack, smem = max(regs, r), max(stack, s), max(smem, shared)
    return key, {"threads": 32 * shape.num_warps, "regs_per_thread": regs, "smem_bytes": smem, "spills": int(stack > 0)}


def combine_resources(job) -> tuple[str, dict]:
    """(resolver key, resources) of the FlashDecoding combine kernel (not MLA's) for a compile_table combine
    job, at the launcher's constexprs: BLOCK_P, the attention tile's rows (the slots' stride), one CTA's row
    block (partition.flashdecoding.COMBINE_ROWS)."""
    from attnsim.plans.resources import COMBINE_WARPS, combine_variant
    from attnsim.simulator.partition.flashdecoding import COMBINE_ROWS, combine_block
    from attnsim.simulator.workload import query_tile_rows

    w = _workload(*job)
    fn, block_m, width, ql = combine_function(w), query_tile_rows(w), w.v_dim, w.q_len
    pointers = dict(o_ptr=TRITON_DTYPES[w.dtype], red_ptr="i32", peer_offsets_ptr="i32", o_part_ptr="fp32",
                    lse_part_ptr="fp32")
    values = dict(stride_ob=w.q_heads * ql * width, stride_oh=ql * width, stride_oi=width, group=w.group)
    consts = dict(BLOCK_P=combine_block(w, COMBINE_WARPS), BLOCK_M=block_m, ROWS=min(block_m, COMBINE_ROWS),
                  HEAD_DIM=width, Q_LEN=ql)
    regs, stack, smem = cross_compile(fn, *specialise(fn, pointers, values, consts), COMBINE_WARPS, 1)
    return combine_variant(w).key, {"threads": 32 * COMBINE_WARPS, "regs_per_thread": regs, "smem_bytes": smem,
                                    "spills": int(stack > 0)}


def cross_compile(fn, sig: dict, consts: dict, attrs: dict, warps: int, stages: int,
                  max_registers: int = 0) -> tuple[int, int, int]:
    """(registers, stack bytes, shared memory bytes) of `fn` compiled for sm_90 with this signature."""
    compiled = compile_sm90(fn, sig, consts, attrs, warps, stages, max_registers)
    return (*_cubin_usage(compiled.asm["cubin"]), compiled.metadata.shared)


def compile_sm90(fn, sig: dict, consts: dict, attrs: dict, warps: int, stages: int, max_registers: int = 0):
    """Triton's CompiledKernel of `fn` for sm_90 (asm: ttgir, ptx, cubin), under a register cap if given."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    options = {"num_warps": warps, "num_stages": stages, **({"maxnreg": max_registers} if max_registers else {})}
    return triton.compile(ASTSource(fn, sig, consts, attrs), target=GPUTarget("cuda", 90, 32), options=options)


def _cubin_usage(cubin: bytes) -> tuple[int, int]:
    """(registers, stack bytes) of the one kernel in a cubin, from cuobjdump -res-usage."""
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
    try:
        out = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    regs, stack = re.search(r"REG:(\d+).*?STACK:(\d+)", out, re.S).groups()
    return int(regs), int(stack)


def _job(job):
    strategy, head_dim, dtype, group, *serving = job
    return _resources(strategy, _workload(head_dim, dtype, group, *serving))


def _missing(jobs, known: dict, replace: bool = False) -> list:
    """The jobs whose variant key the table lacks, or (replace) holds as cross-compiled before today
    (keys are cheap; compiles are seconds each), in priority order with jobs sharing a key together."""
    def wanted(key: str) -> bool:
        source = known.get(key, {}).get("source", "")
        return key not in known or (replace and source.startswith("cross-compiled") and not source.endswith(_STAMP))

    keyed = [(variant_shape(j[0], _workload(j[1], *j[2:]))[1], j) for j in jobs]
    keyed = [(key, j) for key, j in keyed if wanted(key)]
    return [j for key, j in sorted(keyed, key=lambda kj: (kj[1][1] != 128, "/m16/" not in kj[0],
                                                          kj[1][2] != "bfloat16", kj[0]))]


def check_against_device(pool, doc: dict) -> None:
    """Stop unless the device-recorded decode kernels (CHECK) cross-compile to their recorded registers
    and shared memory: then this host's compiles stand for the device's."""
    for key, got in pool.map(_job, CHECK):
        want = doc["kernels"][key]
        if (got["regs_per_thread"], got["smem_bytes"]) != (want["regs_per_thread"], want["smem_bytes"]):
            raise SystemExit(f"{key}: cross-compiled {got}, the device recorded {want}: not adding entries")
    print(f"{len(CHECK)} decode kernels match the device's table", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="compiled table JSON to check against and extend")
    parser.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--replace", action="store_true", help="recompile the cross-compiled entries too")
    parser.add_argument("--combine", action="store_true", help="recompile the combine kernel's entries (not MLA's)")
    args = parser.parse_args()
    import triton

    doc = json.loads(Path(args.table).read_text())
    if args.combine:
        jobs = [j for j in combine_jobs() if not _workload(*j).is_mla]
        with ProcessPoolExecutor(args.jobs) as pool:
            added = {key: {**got, "source": f"cross-compiled for sm_90 on a CPU host, Triton {triton.__version__}, "
                                            f"{_STAMP}"} for key, got in pool.map(combine_resources, jobs)}
        _write(args.table, doc, added)
        print(f"wrote {len(added)} combine entries to {args.table}")
        return
    kernels = kernel_specs()  # one plan spec per kernel
    jobs = _missing([(s, d, t, g) for s in kernels.values() for d in HEAD_DIMS for t in DTYPES for g in GROUPS]
                    + [(s, d, t, *v) for s in kernels.values() for d in SERVING_HEAD_DIMS
                       for t in DTYPES for v in SERVING_VARIANTS], doc["kernels"], args.replace)
    print(f"{len(jobs)} serving variants to compile", flush=True)
    with ProcessPoolExecutor(args.jobs) as pool:
        check_against_device(pool, doc)
        added = {}
        for done, (key, got) in enumerate(pool.map(_job, jobs), 1):  # a key shared by variants: the larger
            if got["regs_per_thread"] >= added.get(key, {}).get("regs_per_thread", 0):
                added[key] = {**got, "source": f"cross-compiled for sm_90 on a CPU host, Triton {triton.__version__}, "
                                               f"{_STAMP}"}
            if done % 16 == 0 or done == len(jobs):
                _write(args.table, doc, added)
                print(f"{done}/{len(jobs)} compiled", flush=True)
    print(f"wrote {len(added)} serving entries to {args.table}; spills: "
          f"{[k for k, v in added.items() if v['spills']] or 'none'}")


def _write(path: str, doc: dict, added: dict) -> None:
    """The table with `added` entries in place (atomically: an interrupted run leaves a whole file)."""
    from attnsim.fileio import write_text

    doc["kernels"] = dict(sorted({**doc["kernels"], **added}.items()))
    write_text(path, json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
