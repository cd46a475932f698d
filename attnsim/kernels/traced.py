"""An attention launch whose programs stamp where and when they ran: SM id, start and end (GPU only).

For measuring how a launch's CTAs spread over the SMs and time (scripts/kernel_trace.py: the engine's
waves and tails against the device's), not for serving. `trace(launcher)` reroutes the launcher's
attention launch through a copy of its kernel in which program p (the plan's CTA: output + split x
outputs for a split grid) stores (%smid, %globaltimer at its first instruction, %globaltimer after its
last store) in trace[p]. The copy is the kernel's own source with the stamps added: the kernel's module
source, then the kernel again under another name with one more argument (`trace_ptr`, before its
constexprs) and the stamps around its body, written to a temporary module and imported. So what is traced
is what ships, and the shipped kernels carry nothing of it. The end stamp follows the program's last
store's issue, not its completion (a store is fire-and-forget), as in scripts/cta_trace.py.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import importlib.util
import inspect
import math
import shutil
import tempfile
from pathlib import Path

import triton
import triton.language as tl

from attnsim import strategies
from attnsim.kernels.tiles import ON_DEVICE

TRACE_COLUMNS = 3  # sm, start ns, end ns (int64)

_IMPORT = "from attnsim.kernels.traced import now_ns, sm_id  # the stamps\n"
_START = "    _trace_start = now_ns()\n"
_END = """    _trace_row = trace_ptr + (tl.program_id(0) + tl.program_id(1) * tl.num_programs(0)) * 3
    tl.store(_trace_row, sm_id())
    tl.store(_trace_row + 1, _trace_start)
    tl.store(_trace_row + 2, now_ns())
"""


@triton.jit
def now_ns():
    """%globaltimer (ns); under the CPU interpreter, which has no inline PTX, 0."""
    if ON_DEVICE:
        return tl.extra.cuda.globaltimer()
    return tl.full([], 0, tl.int64)


@triton.jit
def sm_id():
    """%smid as int64; under the CPU interpreter the program's linear id (each program its own 'SM')."""
    if ON_DEVICE:
        return tl.extra.cuda.smid().to(tl.int64)
    return (tl.program_id(0) + tl.program_id(1) * tl.num_programs(0)).to(tl.int64)


def traced_source(module_source: str, kernel_source: str, function: str) -> str:
    """The module's source followed by `function` again as traced_<function>: trace_ptr added before its
    first constexpr (BLOCK_P: every attention kernel's), the start stamp first in its body, the end stamp
    last. Refuses a kernel whose signature is not the launcher's one (no BLOCK_P) or that returns early
    (a return would skip the end stamp)."""
    header_end = kernel_source.index("):\n") + len("):\n")  # the signature's close: `):` on a line of its own
    signature, body = kernel_source[:header_end], kernel_source[header_end:]
    if "BLOCK_P: tl.constexpr" not in signature or f"def {function}(" not in signature:
        raise ValueError(f"{function}: not an attention kernel of the launcher's signature")
    if "return" in body.split():
        raise ValueError(f"{function}: returns early; its end stamp could be skipped")
    signature = signature.replace(f"def {function}(", f"def traced_{function}(", 1)
    signature = signature.replace("BLOCK_P: tl.constexpr", "trace_ptr, BLOCK_P: tl.constexpr", 1)
    return f"{module_source}\n{_IMPORT}\n\n{signature}{_START}{body.rstrip()}\n{_END}"


@functools.lru_cache(maxsize=None)
def traced_kernel(module_name: str, function: str):
    """The traced copy of kernel `function` of `module_name` (a @triton.jit function), imported once."""
    module = importlib.import_module(module_name)
    source = traced_source(inspect.getsource(module), inspect.getsource(getattr(module, function).fn), function)
    folder = tempfile.mkdtemp(prefix="attnsim-traced-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the JIT has read the source by then
    path = Path(folder) / f"traced_{module_name.replace('.', '_')}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    traced_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(traced_module)
    return getattr(traced_module, f"traced_{function}")


def trace(launcher):
    """Reroute `launcher`'s attention launch (kernels/launch.Launcher) through its kernel's traced copy;
    returns the trace tensor int64 [CTAs, 3] that every later run() fills (sm, start ns, end ns)."""
    import torch

    from attnsim.kernels.fastlaunch import CachedLaunch
    from attnsim.kernels.launch import launch_grid

    kernel: strategies.KernelSpec = launcher.kernel
    ctas = math.prod(launch_grid(kernel, launcher.schedule))
    rows = torch.zeros(ctas, TRACE_COLUMNS, dtype=torch.int64, device=launcher.tables.flags.device)
    traced = CachedLaunch(traced_kernel(kernel.module, kernel.function))
    launcher.launch_attention = lambda grid, args, constexprs: traced(grid, (*args, rows), constexprs)
    return rows
