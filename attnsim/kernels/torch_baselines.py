"""PyTorch SDPA decode as baselines, behind the same launcher interface as our kernels.

Each baseline is a registry entry with an `sdpa_backend` (attnsim.strategies):
- the flash backend: `scaled_dot_product_attention` restricted to SDPBackend.FLASH_ATTENTION. For
  decode PyTorch's bundled FlashAttention-2 runs its split-KV kernel (`flash_fwd_splitkv_kernel`
  + `..._combine_kernel`) with FA2's `num_splits_heuristic`;
- the cuDNN backend: SDPBackend.CUDNN_ATTENTION (cuDNN's fused attention), where the build has it.
Where the model plans a baseline, `meta` carries that plan's grid / splits / launches (what the
model assumes the library launches), not figures read back from the library.

Shapes: q [batch, q_heads, head_dim] -> [batch, q_heads, 1, head_dim]; K/V [batch, kv_heads,
context, head_dim]; `enable_gqa=True` when q_heads != kv_heads, so K/V are not repeated. SDPA has
no per-sequence lengths, so ragged batches are not offered (a padded mask would time the padding
and another code path): `unsupported_reason` says so and the bench records the row as skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from attnsim import strategies
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.workload import DecodeWorkload


def backend_name(name: str) -> str:
    return strategies.get(name).sdpa_backend


def unsupported_reason(name: str, workload: DecodeWorkload) -> str | None:
    """Why a baseline cannot run this workload honestly (None: it can): the registry's reason (paged,
    fp8, q_len > 1, a head dim the library refuses), and ragged batches, which the bench does not time."""
    if workload.is_ragged:
        return "SDPA has no per-sequence lengths"
    if workload.dtype not in ("float16", "bfloat16"):
        return f"{backend_name(name)} needs float16/bfloat16"
    return strategies.get(name).unsupported(workload)


@dataclass
class SdpaLauncher:
    """`run(q, k, v, out=None)` like a kernel launcher; returns [batch, q_heads, head_dim].

    With `out` it copies SDPA's output into it (the correctness check poisons `out`, so every
    element must be written). `timed_call` is what the bench times: SDPA alone, returning its own
    output (SDPA has no out= argument), with the backend chosen once by the returned context.
    """

    name: str
    workload: DecodeWorkload
    meta: dict = field(default_factory=dict)
    schedule: object = None  # no simulator plan behind a library kernel
    resources: object = None

    def backend(self):
        """Context manager that restricts SDPA to this baseline's backend."""
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([getattr(SDPBackend, backend_name(self.name))])

    def sdpa(self, q4, k, v):
        """q4 [batch, q_heads, 1, head_dim] -> o [batch, q_heads, 1, head_dim]; call inside backend()."""
        import torch

        gqa = self.workload.q_heads != self.workload.kv_heads
        return torch.nn.functional.scaled_dot_product_attention(q4, k, v, enable_gqa=gqa)

    def run(self, q, k, v, out=None):
        with self.backend():
            o = self.sdpa(q.unsqueeze(2), k, v).squeeze(2)
        return o if out is None else out.copy_(o)

    def timed_call(self, q, k, v):
        """(callable, context): time the callable inside the context."""
        q4 = q.unsqueeze(2)
        return (lambda: self.sdpa(q4, k, v)), self.backend()


def prepare_baseline(name: str, workload: DecodeWorkload, gpu: GpuSpec) -> SdpaLauncher:
    """A launcher for baseline `name`. The caller checks unsupported_reason first."""
    meta = {}
    if strategies.get(name).predictable:
        from attnsim.plans.plan import resolve_plan

        schedule = resolve_plan(name, workload, gpu).schedule
        meta = {"grid": schedule.grid, "splits": schedule.splits, "launches": len(schedule.launches)}
    return SdpaLauncher(name, workload, meta)


def backend_available(name: str) -> str | None:
    """None when this torch build and GPU offer the backend, else the reason it does not."""
    import torch
    from torch.nn.attention import SDPBackend

    backend = backend_name(name)
    if not hasattr(SDPBackend, backend):
        return f"this torch ({torch.__version__}) has no SDPBackend.{backend}"
    if "CUDNN" in backend and not torch.backends.cudnn.is_available():
        return "cuDNN is not available in this torch build"
    return None
