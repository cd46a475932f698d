"""The decode workload: who attends to how much KV cache.

Validated where it is built (the one edge all inputs cross); the planners and the engine assume a
valid workload.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnsim import limits
from attnsim.errors import InputError

DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}
DTYPE_ALIASES = {"fp16": "float16", "half": "float16", "bf16": "bfloat16", "fp32": "float32"}
HEAD_DIMS = (32, 64, 96, 128, 160, 192, 224, 256)  # what FA2 compiles; kernels check their own subset


def _positive_int(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(field, f"must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class DecodeWorkload:
    """One decode step: `batch` sequences, each with `contexts[i]` cached tokens.

    q: [batch, q_heads, q_len, head_dim]; K/V cache: [batch, kv_heads, context_i, head_dim].
    """

    batch: int
    q_heads: int
    kv_heads: int
    head_dim: int
    contexts: tuple[int, ...]  # one per sequence (uniform batches repeat the same length)
    q_len: int = 1
    dtype: str = "float16"

    @classmethod
    def build(cls, batch, q_heads, kv_heads, head_dim, context, q_len=1, dtype="float16"):
        """`context` is a scalar (uniform batch) or a sequence of per-sequence lengths (ragged)."""
        batch = _positive_int(batch, "batch")
        if isinstance(context, (list, tuple, np.ndarray)):
            contexts = tuple(_positive_int(c, "contexts") for c in context)
            if len(contexts) != batch:
                raise InputError("contexts", f"{len(contexts)} lengths given for batch {batch}")
        else:
            contexts = (_positive_int(context, "context"),) * batch
        return cls(batch, q_heads, kv_heads, head_dim, contexts, q_len, dtype)

    def __post_init__(self):
        for name in ("batch", "q_heads", "kv_heads", "head_dim", "q_len"):
            _positive_int(getattr(self, name), name)
        if self.q_heads % self.kv_heads:
            raise InputError("q_heads", f"{self.q_heads} is not a multiple of kv_heads {self.kv_heads}")
        if self.head_dim not in HEAD_DIMS:
            raise InputError("head_dim", f"{self.head_dim} unsupported; choose one of {HEAD_DIMS}")
        if len(self.contexts) != self.batch or any(c <= 0 for c in self.contexts):
            raise InputError("contexts", "need one positive length per sequence")
        dtype = DTYPE_ALIASES.get(self.dtype, self.dtype)
        if dtype not in DTYPE_BYTES:
            raise InputError("dtype", f"{self.dtype!r} unsupported; choose float16, bfloat16 or float32")
        object.__setattr__(self, "dtype", dtype)
        self._check_limits()

    def _check_limits(self) -> None:
        """attnsim/limits.py: sizes any command models in seconds and bounded memory."""
        limits.check_max(self.batch, limits.MAX_BATCH, "batch", "sequences")
        limits.check_max(max(self.q_heads, self.kv_heads), limits.MAX_HEADS, "q_heads" if self.q_heads >= self.kv_heads
                         else "kv_heads", "heads")
        limits.check_max(self.q_len, limits.MAX_Q_LEN, "q_len", "tokens")
        limits.check_max(max(self.contexts), limits.MAX_CONTEXT, "context" if len(set(self.contexts)) == 1
                         else "contexts", "tokens")
        limits.check_max(self.kv_bytes(), limits.MAX_KV_BYTES, "kv_bytes", "bytes of K+V")
        limits.check_max(self.output_count, limits.MAX_OUTPUTS, "batch", "outputs (batch x kv_heads x query blocks)")

    @property
    def output_count(self) -> int:
        """Outputs (sequence, kv-head, query block) a plan computes: FA2's CTA count."""
        from attnsim.simulator.partition.common import Q_BLOCK_ROWS  # partition imports this module

        return self.batch * self.kv_heads * -(-self.q_len * self.group // Q_BLOCK_ROWS)

    @property
    def group(self) -> int:
        """q-heads per kv-head (1 = MHA, q_heads = MQA); packed into one CTA's query tile."""
        return self.q_heads // self.kv_heads

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def is_ragged(self) -> bool:
        return len(set(self.contexts)) > 1

    @property
    def max_context(self) -> int:
        return max(self.contexts)

    @property
    def context_label(self) -> str:
        """A scalar for uniform batches, 'a;b;c' for ragged ones (the CSV convention)."""
        return str(self.contexts[0]) if not self.is_ragged else ";".join(map(str, self.contexts))

    def kv_bytes(self) -> int:
        """Bytes of K and V every strategy must read at least once."""
        return 2 * sum(self.contexts) * self.kv_heads * self.head_dim * self.dtype_bytes

    def io_bytes(self) -> int:
        """q read + o written (small next to KV, but counted)."""
        return 2 * self.batch * self.q_heads * self.q_len * self.head_dim * self.dtype_bytes
