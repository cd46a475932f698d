"""Record what our Triton kernels ask of an SM, compiled for this GPU: the resolver's compiled table.

    PYTHONPATH=. python3 scripts/compile_table.py --out attnsim/profiles/kernels_sm90.json [--jobs 16]

For every kernel in the registry (and the combine kernel) x head_dim {32, 64, 128, 256} x dtype
{float16, bfloat16} x query-tile rows {16, 32, 64}, at the resolver's default tile / warps / stages,
compile (no launch) and read threads, registers and shared memory from the compiled kernel. Triton
specialises integer arguments equal to 1, so `group` is compiled both as 1 and as 2 and the larger
register count is kept. Compiles run in parallel processes (each owns a CUDA context).

Serving variants (issues 13, 17), at head_dim 64 and 128 (the serving models'): every page size in
both KV dtypes, an fp8 cache, verify blocks q_len {2, 4, 8, 16} at groups 4 and 8 (query rows
8..128) with and without fp8, contiguous and on 16-token pages; keys carry the variant
(attnsim.plans.resources.Variant), others fall back to their closest compiled siblings.

MLA variants (issue 23, MLA_VARIANTS): the two MLA kernels at 512 + 64 in both dtypes, 8..128 query
heads per GPU (16 / 32 / 64 query rows), q_len 1, 2 and 4 (MTP verify), contiguous and every page size,
and their combine kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

HEAD_DIMS = (32, 64, 128, 256)
DTYPES = ("float16", "bfloat16")
GROUPS = (8, 32, 64)  # query-tile rows 16, 32, 64
PAGE_SIZES = (16, 32, 64, 128, 256)
SERVING_HEAD_DIMS = (64, 128)  # the serving models' (Llama, Qwen, Mistral: 128; GPT-OSS, Falcon-7B: 64)
# (group, q_len, page_size, kv_dtype) at SERVING_HEAD_DIMS: paged decode in both KV dtypes at 16 and 64
# query-tile rows, fp8 contiguous at 16/32/64 rows, verify blocks in both KV dtypes (contiguous and
# 16-token pages)
MLA_RANK, MLA_HEAD_DIM = 512, 576  # DeepSeek-V2/V3, Kimi-K2: kv_lora_rank 512 + qk_rope_head_dim 64
# (group, q_len, page_size) of the MLA kernels: heads per GPU 8 (Kimi-K2 at TP 8) .. 128 (DeepSeek at TP 1)
MLA_VARIANTS = [(group, q_len, page) for group, q_len in ((8, 1), (16, 1), (32, 1), (64, 1), (128, 1), (8, 2), (16, 2),
                                                          (128, 2), (16, 4)) for page in (0, *PAGE_SIZES)]
SERVING_VARIANTS = ([(group, 1, page, kv) for group in (8, 64) for page in PAGE_SIZES for kv in ("", "fp8")]
                    + [(group, 1, 0, "fp8") for group in (8, 32, 64)]
                    + [(group, q, 0, kv) for group in (4, 8) for q in (2, 4, 8, 16) for kv in ("", "fp8")]
                    + [(8, q, 16, kv) for kv in ("", "fp8") for q in (2, 4, 8, 16)])


def _workload(head_dim, dtype, group, q_len=1, page_size=0, kv_dtype="", kv_lora_rank=0):
    from attnsim.simulator.workload import DecodeWorkload

    return DecodeWorkload.build(1, group, 1, head_dim, 4096, q_len, dtype, page_size, kv_dtype,
                                kv_lora_rank=kv_lora_rank)


def combine_jobs() -> list[tuple]:
    """(head_dim, dtype, group, [serving...]) of the combine kernels: decode at every head dim and group, the
    serving variants of more than one query position, and the MLA combine's."""
    jobs = [(d, t, g) for d in HEAD_DIMS for t in DTYPES for g in GROUPS]
    return jobs + [(128, t, *v) for t in DTYPES for v in SERVING_VARIANTS if v[1] > 1] + mla_combine_jobs()


def mla_combine_jobs() -> list[tuple]:
    """(head_dim, dtype, group, q_len, page_size, kv_dtype, kv_lora_rank) of the MLA combine kernel."""
    return sorted({(d, t, g, q, 0, "", r) for _, d, t, g, q, _, _, r in mla_jobs()})


def mla_jobs() -> list[tuple]:
    """(strategy, head_dim, dtype, group, q_len, page_size, kv_dtype, kv_lora_rank) of both MLA kernels."""
    from attnsim import strategies

    mla = _workload(MLA_HEAD_DIM, "bfloat16", 16, kv_lora_rank=MLA_RANK)
    kernels = {strategies.get(n).kernel_for(mla).name: n for n in strategies.ours_mla()}  # one strategy per kernel
    return [(s, MLA_HEAD_DIM, t, g, q, p, "", MLA_RANK) for s in kernels.values() for t in DTYPES
            for g, q, p in MLA_VARIANTS]


def compile_one(job) -> dict:
    """(plan spec (kernel_specs), head_dim, dtype, group[, q_len, page_size, kv_dtype]) -> {key, threads,
    regs_per_thread, smem_bytes} or an error."""
    import torch

    from attnsim import strategies
    from attnsim.kernels.launch import compile_attention

    strategy, head_dim, dtype, group, *serving = job
    workload = _workload(head_dim, dtype, group, *serving)
    kernel = spec_config(strategy, workload)[2]
    shape, key = variant_shape(strategy, workload)
    try:
        regs, smem, threads = 0, 0, 0
        for g in (1, 2):  # Triton specialises group == 1
            w = _workload(head_dim, dtype, g if g == 1 else group, *serving)
            compiled = compile_attention(kernel, w, shape, torch.device("cuda"))
            regs, smem = max(regs, compiled.n_regs), max(smem, compiled.metadata.shared)
            threads = 32 * compiled.metadata.num_warps
        return {"key": key, "threads": threads, "regs_per_thread": regs, "smem_bytes": smem,
                "spills": int(compiled.n_spills)}
    except Exception as exc:  # a shape the compiler refuses is a row, not the end of the table
        return {"key": key, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}


def compile_combine(job) -> dict:
    import torch

    from attnsim.kernels.launch import MLA_MERGE_BLOCK
    from attnsim.plans.resources import COMBINE_WARPS, combine_variant
    from attnsim.simulator.partition.flashdecoding import COMBINE_ROWS, combine_block
    from attnsim.simulator.workload import query_tile_rows

    head_dim, dtype, group, *serving = job
    workload = _workload(head_dim, dtype, group, *serving)
    block_m, width = query_tile_rows(workload), workload.v_dim  # MLA: its combine over kv_lora_rank columns
    combine_kernel = combine_function(workload)
    dt = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    i32, f32 = torch.int32, torch.float32
    ql = workload.q_len
    rows = {} if workload.is_mla else {"ROWS": min(block_m, COMBINE_ROWS)}  # one CTA's row block
    block_p = MLA_MERGE_BLOCK if workload.is_mla else combine_block(workload, COMBINE_WARPS)
    compiled = combine_kernel.warmup(dt, i32, i32, f32, f32, 4096 * ql, width * ql, width, group, grid=(1,),
                                     BLOCK_P=block_p, BLOCK_M=block_m, **rows, HEAD_DIM=width, Q_LEN=ql,
                                     num_warps=COMBINE_WARPS, num_stages=1)
    compiled = compiled.result() if hasattr(compiled, "result") else compiled
    compiled._init_handles()
    return {"key": combine_variant(workload).key, "threads": 32 * COMBINE_WARPS,
            "regs_per_thread": compiled.n_regs, "smem_bytes": compiled.metadata.shared,
            "spills": int(compiled.n_spills)}


def combine_function(workload):
    """The combine jit function a workload's split plans launch (the MLA kernels name their own)."""
    import importlib

    from attnsim import strategies

    module, name = strategies.MLA_COMBINE if workload.is_mla else strategies.KernelSpec("", "", "", 1).combine
    return getattr(importlib.import_module(module), name)


def kernel_specs() -> dict[str, str]:
    """Kernel name -> a plan spec that runs it, one per kernel of ours: a strategy ('streamk'), or a
    strategy with the option that picks another kernel ('streamk:epilogue=last', 'splitkv:chunk_tokens=1024')."""
    from attnsim import strategies

    found = {}
    for name in strategies.ours():
        s = strategies.get(name)
        found.setdefault(s.kernel.name, name)
        for value, kernel in s.epilogue_kernels.items():
            found.setdefault(kernel.name, f"{name}:epilogue={value}")
        if s.chunk_kernel is not None:
            found.setdefault(s.chunk_kernel.name, f"{name}:chunk_tokens=1024")
    return found


def spec_config(spec: str, workload):
    """(registry entry, complete PlanConfig, KernelSpec) of a plan spec on `workload` at the resolver's defaults."""
    from attnsim.plans.plan import options_for, plan_config
    from attnsim.plans.spec import parse_plan_spec

    strategy, options = parse_plan_spec(spec)
    config, _ = plan_config(strategy, workload, _gpu(), options_for(strategy, options))
    return strategy, config, strategy.kernel_for(workload, config)


def variant_shape(spec: str, workload):
    """(launch.KernelShape, variant key) of the kernel that runs plan spec `spec` (a strategy, or a
    strategy with options: kernel_specs) on `workload` at the resolver's defaults."""
    from attnsim.kernels.launch import kernel_shape
    from attnsim.plans.resources import variant

    _, config, kernel = spec_config(spec, workload)
    shape = kernel_shape(workload, config, kernel)
    return shape, variant(kernel.name, workload, shape.block_n, shape.num_warps, shape.num_stages).key


def _gpu():
    from attnsim.simulator.hardware import from_name

    return from_name("h200")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--jobs", type=int, default=min(16, os.cpu_count() or 1))
    args = parser.parse_args()
    import multiprocessing

    kernels = kernel_specs()  # one plan spec per kernel
    jobs = [(s, d, t, g) for s in kernels.values() for d in HEAD_DIMS for t in DTYPES for g in GROUPS]
    jobs += [(s, d, t, *v) for s in kernels.values() for d in SERVING_HEAD_DIMS for t in DTYPES
             for v in SERVING_VARIANTS]
    jobs += mla_jobs()
    start = time.time()
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = list(pool.map(compile_one, jobs)) + list(pool.map(compile_combine, combine_jobs()))
    import torch
    import triton

    table = {}
    for r in sorted((r for r in rows if "error" not in r), key=lambda r: r["regs_per_thread"]):
        table[r.pop("key")] = r  # variants sharing a key (q_len x group rows): the larger registers win
    doc = {"format": "attnsim-compiled-kernels", "compute_capability": list(torch.cuda.get_device_capability()),
           "source": f"Triton {triton.__version__} kernels compiled for {torch.cuda.get_device_name()} "
                     f"(sm_{''.join(map(str, torch.cuda.get_device_capability()))}), {time.strftime('%Y-%m-%d')}; "
                     "registers: the larger of the group == 1 and group > 1 specialisations",
           "kernels": dict(sorted(table.items()))}
    from attnsim.fileio import write_text

    write_text(args.out, json.dumps(doc, indent=1) + "\n")
    errors = [r for r in rows if "error" in r]
    print(f"compiled {len(table)} kernel shapes in {time.time() - start:.0f} s; {len(errors)} refused")
    for r in errors:
        print("  refused:", r["key"], r["error"])
    spills = {k: v["spills"] for k, v in table.items() if v["spills"]}
    print("spills:", spills or "none")


if __name__ == "__main__":
    main()
