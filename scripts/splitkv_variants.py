"""Kernel variants of kernels/split_kv.py for the device A/B runs of scripts/splitkv_device.py: each
is the committed source with one block changed. They are timed, not checked (most compute something
else on purpose).

- `bp4`: (stage 1) 4 partials per merge step; set through the launcher's shape, no source change.
- `nomerge`: the last arrival does not merge: the merge's cost.
- `noepilogue`: partials stored, no counter, no merge, the code still there: the epilogue's cost.
- `nocode`: the epilogue's code deleted: whether its presence slows the main loop.
(`v2merge`, v2's merge in v3's kernel, was measured on 2026-12-05 (results/h200/splitkv_v3.csv) and left
when arrival.merge_store became one pipeline across row groups; its source is in commit 737084f.)
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

MERGE_CALL = ("            merge_output(o_ptr, o_part_ptr, lse_part_ptr, row, output, n_outputs, n_splits, group,\n"
              "                         stride_ob, stride_oh, stride_oi, BLOCK_M, BLOCK_N, HEAD_DIM, Q_LEN, D_VALID)\n")
EPILOGUE = "    if n_splits > 1:\n        if arrive("


def _replace(old: str, new: str | None):
    def apply(source: str) -> str:
        if old not in source:
            raise RuntimeError("variant block not found in split_kv.py")
        return source.replace(old, new) if new is not None else source[: source.index(old)]
    return apply


VARIANTS = {
    "nomerge": _replace(MERGE_CALL, "            tl.debug_barrier()\n"),
    "noepilogue": _replace(EPILOGUE, "    if n_splits < 0:\n        if arrive("),
    "nocode": _replace(EPILOGUE, None),  # None: the kernel ends before this text
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
