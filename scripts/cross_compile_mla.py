"""Compiled resources of the MLA kernels (issue 23), cross-compiled for sm_90 on a host without a GPU.

    PYTHONPATH=. python3 scripts/cross_compile_mla.py --table attnsim/profiles/kernels_sm90.json

The method of scripts/cross_compile_serving.py (triton.compile for target sm_90 with the JIT's
specialisation of a packed run, registers and stack from cuobjdump, shared memory from the compile's
metadata): first the decode kernels whose device entries the table holds are recompiled and must
match them, then every MLA variant of compile_table.MLA_VARIANTS (both MLA kernels: FA2-style /
split plans and stream-K plans) and the MLA combine kernel are added, each marked as cross-compiled.
Variants sharing a key (8 and 16 heads are both 16 query rows) keep the larger registers. The device
run of compile_table.py (which includes the MLA variants) replaces them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from compile_table import _workload, combine_function, mla_combine_jobs, mla_jobs  # noqa: E402
from cross_compile_serving import (  # noqa: E402
    TRITON_DTYPES, _resources, check_against_device, cross_compile, specialise,
)


def _mla_job(job):
    strategy, head_dim, dtype, group, *serving = job
    return _resources(strategy, _workload(head_dim, dtype, group, *serving))


def _combine_job(job):
    """(key, resources) of the MLA combine kernel for one (head_dim, dtype, group, q_len, ...) job."""
    from attnsim.kernels.launch import MLA_MERGE_BLOCK
    from attnsim.plans.resources import COMBINE_WARPS, combine_variant
    from attnsim.simulator.workload import query_tile_rows

    workload = _workload(*job)
    fn = combine_function(workload)
    width, ql = workload.v_dim, workload.q_len
    values = dict(stride_ob=workload.q_heads * ql * width, stride_oh=ql * width, stride_oi=width, group=workload.group)
    consts = dict(BLOCK_P=MLA_MERGE_BLOCK, BLOCK_M=query_tile_rows(workload), HEAD_DIM=width, Q_LEN=ql)
    pointers = dict(o_ptr=TRITON_DTYPES[workload.dtype], red_ptr="i32", peer_offsets_ptr="i32", o_part_ptr="fp32",
                    lse_part_ptr="fp32")
    regs, stack, smem = cross_compile(fn, *specialise(fn, pointers, values, consts), COMBINE_WARPS, 1)
    return combine_variant(workload).key, {"threads": 32 * COMBINE_WARPS, "regs_per_thread": regs,
                                           "smem_bytes": smem, "spills": int(stack > 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="compiled table JSON to check against and extend")
    parser.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--combine-only", action="store_true", help="recompile only the MLA combine kernel")
    args = parser.parse_args()
    import triton

    doc = json.loads(Path(args.table).read_text())
    source = f"cross-compiled for sm_90 on a CPU host, Triton {triton.__version__}"
    with ProcessPoolExecutor(args.jobs) as pool:
        check_against_device(pool, doc)
        added: dict[str, dict] = {}
        attention = [] if args.combine_only else list(pool.map(_mla_job, mla_jobs()))
        results = attention + list(pool.map(_combine_job, mla_combine_jobs()))
    for key, got in results:  # variants sharing a key: the larger registers
        if got["regs_per_thread"] >= added.get(key, {}).get("regs_per_thread", 0):
            added[key] = {**got, "source": source}
    doc["kernels"] = dict(sorted({**doc["kernels"], **added}.items()))
    from attnsim.fileio import write_text

    write_text(args.table, json.dumps(doc, indent=1) + "\n")
    spills = {k: v["regs_per_thread"] for k, v in added.items() if v["spills"]}
    print(f"added {len(added)} MLA entries to {args.table}; spilling (registers): {spills or 'none'}")


if __name__ == "__main__":
    main()
