"""What PyTorch SDPA (the torch-flash and torch-cudnn baselines) takes as a decode input.

`scaled_dot_product_attention(q, k, v)` reads one contiguous K and V per sequence batch in the
query's dtype: no block tables (a paged cache), no fp8 K/V with scales. The bench times it at q_len 1
(is_causal=False: every query row attends the whole cache); a verify block of q_len > 1 needs the
bottom-right causal mask (query i of a context L sees L - q_len + 1 + i tokens), which SDPA's
`is_causal` does not give (it aligns top-left) and the flash backend takes no mask at all. Such an
input is not modelled: a baseline time there would be of something no engine can run. Ragged batches
are modelled as an extrapolation (each output's own length; the bench does not time them), as the
partitions' docstrings say.
"""

from __future__ import annotations

from attnsim.simulator.workload import DecodeWorkload


def unsupported(workload: DecodeWorkload) -> str | None:
    """Why SDPA cannot take `workload` (None: it can)."""
    if workload.is_mla:
        return ("SDPA has no latent-attention path: an MLA layer's K and V are one latent cache read with "
                "different widths (576 and 512)")
    if workload.paged:
        return "SDPA reads a contiguous K/V cache (no block tables): a paged cache is not its input"
    if workload.kv_dtype:
        return (f"SDPA reads K/V in the query's dtype ({workload.dtype}): a {workload.cache_dtype} cache is "
                "not its input")
    if workload.q_len != 1:
        return ("SDPA decode is q_len 1: a verify block needs a bottom-right causal mask, which is_causal "
                "(top-left) does not give")
    return None
