"""Kernel variants of kernels/split_kv.py for the device A/B runs of scripts/splitkv_device.py: each
is the committed source with one block changed. They are timed, not checked (most compute something
else on purpose).

- `bp4`: (stage 1) 4 partials per merge step; set through the launcher's shape, no source change.
- `nomerge`: the last arrival does not merge: the merge's cost.
- `noepilogue`: partials stored, no counter, no merge, the code still there: the epilogue's cost.
- `nocode`: the epilogue's code deleted: whether its presence slows the main loop.
- `v2merge`: v3's pipelined merge (kernels/arrival.py's load_step + merge_rows) replaced by v2's
  (masked loads, one step at a time), which computes the same output: the A/B of the merge's load
  schedule. The variant file defines v2's merge_rows and a copy of arrival.merge_store that calls it.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

MERGE_CALL = ("            merge_output(o_ptr, o_part_ptr, lse_part_ptr, row, output, n_outputs, n_splits, group,\n"
              "                         stride_ob, stride_oh, stride_oi, BLOCK_M, BLOCK_N, HEAD_DIM, Q_LEN)\n")
EPILOGUE = "    if n_splits > 1:\n        if arrive("

# v2's merge (committed until 2026-12-05): masked loads with zero-filled destinations, which ptxas
# issued one at a time next to their uses (docs/kernels.md, "v3")
V2_MERGE_ROWS = '@triton.jit\ndef merge_rows(o_part_ptr, lse_part_ptr, output, n_outputs, used, rows, n_rows, BLOCK_M: tl.constexpr,\n               HEAD_DIM: tl.constexpr, SPLITS_PER_STEP: tl.constexpr):\n    """o [MERGE_ROWS, HEAD_DIM] fp32 of query-tile rows `rows` [MERGE_ROWS] (valid below n_rows),\n    merged over the partials of splits [0, used) of `output` (slots output + s·n_outputs).\n\n    One step loads MERGE_ROWS x SPLITS_PER_STEP partial rows at once (a [rows, splits, HEAD_DIM]\n    gather, 32 fp32 per thread at 4 warps): only valid rows, so a q-block\'s few rows (GQA: 4 of\n    16) do not pad a step, and ceil(R / 4)·ceil(S / SPLITS_PER_STEP) dependent load rounds merge R\n    rows of S splits (a [BLOCK_M] tile per partial took 1 + S / 4). Within a step the max over its\n    splits comes first; steps run in split order with a fixed rescale, so the result depends on\n    the plan only, never on which split arrived last. (64 fp32 per thread halved the rounds but\n    compiled to 168 registers and a spill at d 128.)"""\n    offs_j = tl.arange(0, SPLITS_PER_STEP)\n    offs_d = tl.arange(0, HEAD_DIM)\n    row_ok = rows < n_rows\n    m = tl.full([MERGE_ROWS], float("-inf"), tl.float32)\n    den = tl.zeros([MERGE_ROWS], tl.float32)\n    acc = tl.zeros([MERGE_ROWS, HEAD_DIM], tl.float32)\n    for s0 in range(0, used, SPLITS_PER_STEP):\n        splits = s0 + offs_j  # [SPLITS_PER_STEP]\n        ok = row_ok[:, None] & (splits < used)[None, :]  # [MERGE_ROWS, SPLITS_PER_STEP]\n        part_row = (output + splits.to(tl.int64) * n_outputs)[None, :] * BLOCK_M + rows[:, None]\n        lse = tl.load(lse_part_ptr + part_row, mask=ok, other=float("-inf"), cache_modifier=".cg")\n        o_s = tl.load(o_part_ptr + part_row[:, :, None] * HEAD_DIM + offs_d[None, None, :], mask=ok[:, :, None],\n                      other=0.0, cache_modifier=".cg")  # [MERGE_ROWS, SPLITS_PER_STEP, HEAD_DIM]\n        m_new = tl.maximum(m, tl.max(lse, 1))\n        m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with nothing yet: weights 0, not NaN\n        rescale = tl.exp2(m - m_ref)  # [MERGE_ROWS]; 0 while m = -inf\n        w = tl.exp2(lse - m_ref[:, None])  # [MERGE_ROWS, SPLITS_PER_STEP]; 0 for masked partials\n        den = den * rescale + tl.sum(w, 1)\n        acc = acc * rescale[:, None] + tl.sum(o_s * w[:, :, None], 1)\n        m = m_new\n    return acc / tl.where(den == 0.0, 1.0, den)[:, None]\n\n\n'


def _replace(old: str, new: str | None):
    def apply(source: str) -> str:
        if old not in source:
            raise RuntimeError("variant block not found in split_kv.py")
        return source.replace(old, new) if new is not None else source[: source.index(old)]
    return apply


def _swap_merge(source: str) -> str:
    arrival = Path(importlib.util.find_spec("attnsim.kernels.arrival").origin).read_text()
    merge_store = arrival[arrival.index("@triton.jit\ndef merge_store("):]
    imports = "from attnsim.kernels.arrival import arrive, merge_store\n"
    if imports not in source:
        raise RuntimeError("variant v2merge: split_kv.py no longer imports merge_store from arrival")
    tiles_import = next(line for line in arrival.splitlines() if line.startswith("from attnsim.kernels.tiles import"))
    source = source.replace(imports, f"from attnsim.kernels.arrival import MERGE_ROWS, arrive\n{tiles_import}\n")
    at = source.index("@triton.jit\ndef split_kv_kernel(")
    return source[:at] + V2_MERGE_ROWS + merge_store.rstrip() + "\n\n\n" + source[at:]


VARIANTS = {
    "nomerge": _replace(MERGE_CALL, "            tl.debug_barrier()\n"),
    "noepilogue": _replace(EPILOGUE, "    if n_splits < 0:\n        if arrive("),
    "nocode": _replace(EPILOGUE, None),  # None: the kernel ends before this text
    "v2merge": _swap_merge,
}


def apply(name: str, source: str) -> str:
    """split_kv.py's source with variant `name` applied."""
    return VARIANTS[name](source)


def kernel_source() -> str:
    """The committed kernels/split_kv.py."""
    return Path(importlib.util.find_spec("attnsim.kernels.split_kv").origin).read_text()


def load(name: str):
    """kernels/split_kv.py with variant `name` applied, imported from a temporary file (its jit
    functions resolve their globals there)."""
    path = Path(tempfile.mkdtemp()) / f"split_kv_{name}.py"
    path.write_text(apply(name, kernel_source()))
    spec = importlib.util.spec_from_file_location(f"split_kv_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
