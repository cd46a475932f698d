"""The decode workload: who attends to how much KV cache, stored how.

Validated where it is built (the one edge all inputs cross); the planners and the engine assume a
valid workload.

Serving shapes (issue 13):
- q_len 1..MAX_Q_LEN new tokens per sequence (speculative-decoding verify): query position i
  (0-based) of a sequence with context L attends tokens [0, L - q_len + 1 + i); the context
  includes the q_len new tokens, so every context is >= q_len. Longer q_len is prefill: refused.
- page_size 0 (contiguous K/V) or a power of two in PAGE_SIZES: K/V live in a page pool
  [num_pages, page_size, kv_heads, head_dim] read through per-sequence block tables.
- kv_dtype: the KV cache's element type; "" = the same as `dtype`, or float8_e4m3fn (fp8 e4m3
  with one float32 scale per kv-head for K and one for V; queries and outputs stay in `dtype`).
- layers: attention layers of the model one step runs through (None: not a model, per-layer only).
- window_tokens / window_layers: of those layers, `window_layers` attend only the last
  `window_tokens` tokens of each sequence (a sliding window, Mistral v0.1, Gemma-2); the others all
  of them. `contexts` stay the sequences' lengths; layer_kinds() gives what each kind of layer reads.
- tp: GPUs of the tensor-parallel group whose one GPU's share this is (the heads are per GPU);
  carried for records and titles, the model itself only sees the heads.
- kv_lora_rank > 0: multi-head latent attention (simulator/mla.py): one latent KV head of head_dim
  = kv_lora_rank + rope dims per token, read as K (all of it) and V (its first kv_lora_rank
  elements); outputs are kv_lora_rank wide.

Float32 is refused: no decode kernel runs it (ours and PyTorch SDPA's flash and cuDNN backends take
float16 / bfloat16 queries, our KV caches float16 / bfloat16 / fp8), so a float32 time would model
nothing that exists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from attnsim import limits
from attnsim.errors import InputError
from attnsim.simulator import mla

DTYPE_BYTES = {"float16": 2, "bfloat16": 2}
NO_KERNEL_DTYPES = ("float32",)  # named by users and configs, run by no decode kernel (see above)
DTYPE_ALIASES = {"fp16": "float16", "half": "float16", "bf16": "bfloat16", "fp32": "float32", "float": "float32"}
FP8 = "float8_e4m3fn"
KV_DTYPE_BYTES = {**DTYPE_BYTES, FP8: 1}
# vLLM's --kv-cache-dtype names (auto: the model's dtype) and torch's; e5m2 is not supported. Keyword
# arguments: `auto` also names a strategy, and string literals equal to one are kept to the registry.
KV_DTYPE_ALIASES = {**DTYPE_ALIASES, **dict(auto="", fp8=FP8, fp8_e4m3=FP8, e4m3=FP8, float8_e4m3=FP8)}
HEAD_DIMS = (32, 64, 96, 128, 160, 192, 224, 256)  # what FA2 compiles; our kernels pad 96-224 (block_head_dim)
MAX_Q_LEN = limits.MAX_Q_LEN  # 16: speculative-decoding verify; beyond it is prefill (not modelled)
PAGE_SIZES = (16, 32, 64, 128, 256)  # tokens per page: powers of two, so KV tiles (powers of two >= 16)
#                                      hold whole pages or lie inside one (never straddle a page boundary)
Q_BLOCK_ROWS = 64  # FA2's kBlockM: query rows (q_len x group, packed) per output (q-block)


def _positive_int(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(field, f"must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class DecodeWorkload:
    """One decode step: `batch` sequences, each with `contexts[i]` cached tokens.

    q: [batch, q_heads, q_len, head_dim]; K/V cache: [batch, kv_heads, context_i, head_dim], or a
    page pool [num_pages, page_size, kv_heads, head_dim] with block tables when page_size > 0; MLA
    (kv_lora_rank > 0): one latent cache of that shape (kv_heads 1), o [batch, q_heads, q_len, kv_lora_rank].
    """

    batch: int
    q_heads: int
    kv_heads: int
    head_dim: int
    contexts: tuple[int, ...]  # one per sequence (uniform batches repeat the same length)
    q_len: int = 1
    dtype: str = "float16"
    page_size: int = 0  # 0: contiguous K/V; else tokens per page of a paged pool
    kv_dtype: str = ""  # "": the same as dtype; FP8: e4m3 with per-kv-head scales
    layers: int | None = None  # attention layers per step (per-token totals); None: one layer only
    window_tokens: int = 0  # sliding window of the model's windowed layers; 0: none
    window_layers: int = 0  # how many of `layers` use it
    tp: int = 1  # tensor-parallel GPUs the model's heads are sharded over (q_heads/kv_heads: one GPU's)
    kv_lora_rank: int = 0  # MLA: latent rank (the value / output width); 0: K and V heads of head_dim

    @classmethod
    def build(cls, batch, q_heads, kv_heads, head_dim, context, q_len=1, dtype="float16", page_size=0,
              kv_dtype="", layers=None, window_tokens=0, window_layers=0, tp=1, kv_lora_rank=0):
        """`context` is a scalar (uniform batch) or a sequence of per-sequence lengths (ragged)."""
        batch = _positive_int(batch, "batch")
        if isinstance(context, (list, tuple, np.ndarray)):
            contexts = tuple(_positive_int(c, "contexts") for c in context)
            if len(contexts) != batch:
                raise InputError("contexts", f"{len(contexts)} lengths given for batch {batch}")
        else:
            contexts = (_positive_int(context, "context"),) * batch
        return cls(batch, q_heads, kv_heads, head_dim, contexts, q_len, dtype, page_size, kv_dtype, layers,
                   window_tokens, window_layers, tp, kv_lora_rank)

    def __post_init__(self):
        for name in ("batch", "q_heads", "kv_heads", "head_dim", "q_len"):
            _positive_int(getattr(self, name), name)
        if self.q_heads % self.kv_heads:
            raise InputError("q_heads", f"{self.q_heads} is not a multiple of kv_heads {self.kv_heads}")
        if not self.kv_lora_rank and self.head_dim not in HEAD_DIMS:
            raise InputError("head_dim", f"{self.head_dim} unsupported; choose one of {HEAD_DIMS}")
        if len(self.contexts) != self.batch or any(c <= 0 for c in self.contexts):
            raise InputError("contexts", "need one positive length per sequence")
        dtype = DTYPE_ALIASES.get(self.dtype, self.dtype)
        if dtype in NO_KERNEL_DTYPES:
            raise InputError("dtype", f"{dtype}: no decode kernel runs it (ours and PyTorch SDPA's take float16 "
                                      "or bfloat16); choose float16 or bfloat16")
        if dtype not in DTYPE_BYTES:
            raise InputError("dtype", f"{self.dtype!r} unsupported; choose float16 or bfloat16")
        object.__setattr__(self, "dtype", dtype)
        self._check_serving()
        self._check_limits()

    def _check_serving(self) -> None:
        """q_len range, page size, KV dtype (canonicalised: "" when it equals dtype), layers, tp."""
        if self.q_len > MAX_Q_LEN:
            raise InputError("q_len", f"{self.q_len} is above {MAX_Q_LEN}: the decode model covers speculative "
                                      "verify (q_len 1-16); longer query blocks are prefill")
        if min(self.contexts) < self.q_len:
            raise InputError("contexts", f"a context of {min(self.contexts)} cannot hold the q_len {self.q_len} "
                                         "new tokens (the context includes them)")
        if isinstance(self.page_size, bool) or self.page_size not in (0, *PAGE_SIZES):
            raise InputError("page_size", f"{self.page_size!r} unsupported; 0 (contiguous) or one of {PAGE_SIZES}")
        kv = KV_DTYPE_ALIASES.get(str(self.kv_dtype).lower(), str(self.kv_dtype).lower())
        if kv in NO_KERNEL_DTYPES:
            raise InputError("kv_dtype", f"{kv}: no decode kernel reads a {kv} KV cache (ours read float16, "
                                         "bfloat16 or fp8; PyTorch SDPA the query's dtype)")
        if kv not in ("", *KV_DTYPE_BYTES):
            raise InputError("kv_dtype", f"{self.kv_dtype!r} unsupported; choose auto, float16, bfloat16 or fp8 "
                                         "(float8_e4m3fn)")
        object.__setattr__(self, "kv_dtype", "" if kv == self.dtype else kv)
        if self.kv_lora_rank:
            mla.check_dims(self.kv_lora_rank, self.head_dim, self.kv_heads, self.kv_fp8)
        if self.layers is not None:
            _positive_int(self.layers, "layers")
        _positive_int(self.tp, "tp")
        self._check_window()

    def _check_window(self) -> None:
        """Both window fields 0, or a positive window over 1..layers of the model's layers."""
        if (self.window_tokens, self.window_layers) == (0, 0):
            return
        _positive_int(self.window_tokens, "window_tokens")
        _positive_int(self.window_layers, "window_layers")
        if self.layers is None or self.window_layers > self.layers:
            raise InputError("window_layers", f"{self.window_layers} windowed layers of a model with "
                                              f"{self.layers} attention layers")
        if self.window_tokens < self.q_len:
            raise InputError("window_tokens", f"a window of {self.window_tokens} cannot hold the q_len {self.q_len} "
                                              "new tokens")

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

    def layer_kinds(self) -> tuple[tuple["DecodeWorkload", int], ...]:
        """((workload one layer of a kind reads, layers of that kind), ...): full-attention layers
        first, then the windowed ones reading min(context, window) tokens; each a plain workload
        (no window fields) whose `layers` is its count. A window no sequence exceeds is full attention."""
        if not self.window_layers:
            return ((self, self.layers or 1),)
        clipped = tuple(min(c, self.window_tokens) for c in self.contexts)
        plain = replace(self, window_tokens=0, window_layers=0)
        if clipped == self.contexts:
            return ((plain, self.layers),)
        full = self.layers - self.window_layers
        windowed = replace(plain, contexts=clipped, layers=self.window_layers)
        return ((replace(plain, layers=full), full), (windowed, self.window_layers)) if full else \
            ((windowed, self.window_layers),)

    def modelled_layer(self) -> "DecodeWorkload":
        """The layer a per-layer time describes: a full-attention layer if the model has one, else a
        windowed one (what every layer of, e.g., Mistral-7B v0.1 reads)."""
        return self.layer_kinds()[0][0]

    @property
    def output_count(self) -> int:
        """Outputs (sequence, kv-head, query block) a plan computes: FA2's CTA count."""
        return self.batch * self.kv_heads * self.q_blocks

    @property
    def q_blocks(self) -> int:
        """Query blocks per (sequence, kv-head): its q_len x group packed rows, Q_BLOCK_ROWS at a time."""
        return -(-self.q_len * self.group // Q_BLOCK_ROWS)

    @property
    def group(self) -> int:
        """q-heads per kv-head (1 = MHA, q_heads = MQA); packed into one CTA's query tile."""
        return self.q_heads // self.kv_heads

    @property
    def dtype_bytes(self) -> int:
        """Bytes of a q / o element."""
        return DTYPE_BYTES[self.dtype]

    @property
    def cache_dtype(self) -> str:
        """The KV cache's element type (kv_dtype, else dtype)."""
        return self.kv_dtype or self.dtype

    @property
    def kv_dtype_bytes(self) -> int:
        """Bytes of a K / V element."""
        return KV_DTYPE_BYTES[self.cache_dtype]

    @property
    def kv_fp8(self) -> bool:
        return self.cache_dtype == FP8

    @property
    def is_mla(self) -> bool:
        """Multi-head latent attention: one latent KV head read as K and as V (simulator/mla.py)."""
        return self.kv_lora_rank > 0

    @property
    def beyond_decode_math(self) -> bool:
        """More tile math per byte than our kernels' decode calibration saw: verify, fp8 KV or MLA (the
        tile-math cap prices it: cost.math_capped, terms.TERMS["tile-math"])."""
        return self.q_len > 1 or self.kv_fp8 or self.is_mla

    @property
    def v_dim(self) -> int:
        """Width of a value row and of an output head: kv_lora_rank for MLA, else head_dim."""
        return self.kv_lora_rank or self.head_dim

    @property
    def tile_head_dim(self) -> int:
        """Columns of our kernels' q and K tiles (HEAD_DIM): head_dim padded to a power of two (block_head_dim);
        an MLA latent row's (head_dim: kv_lora_rank + rope) as it is."""
        return self.head_dim if self.is_mla else block_head_dim(self.head_dim)

    @property
    def pads_head_dim(self) -> bool:
        """Whether our kernels' tiles are wider than the head dim (96, 160-224: D_VALID masks the rest)."""
        return self.tile_head_dim != self.head_dim

    @property
    def loaded_column_share(self) -> float:
        """head_dim / tile_head_dim: the share of a K/V tile row's columns a load fetches (the padded columns are
        masked, their sectors never read), so of a power-of-two tile's bytes in flight (cost.stream_gbps); 1 at a
        power of two and for MLA."""
        return self.head_dim / self.tile_head_dim

    @property
    def partial_dim(self) -> int:
        """Columns of our kernels' tiles and fp32 partials: v_dim, padded to a power of two (block_head_dim) for
        FA2's head dims that are not one (the kernels mask the padded columns off q, K, V and o)."""
        return self.v_dim if self.is_mla else self.tile_head_dim

    @property
    def kv_token_bytes(self) -> int:
        """K+V bytes one cached token costs one KV head (MLA: the one latent vector)."""
        return mla.kv_token_bytes(self.head_dim, self.v_dim, self.is_mla, self.kv_dtype_bytes)

    @property
    def paged(self) -> bool:
        return self.page_size > 0

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

    @property
    def serving_label(self) -> str:
        """The serving features beside the query dtype, e.g. 'KV float8_e4m3fn, 16-token pages, q_len 4';
        '' for a contiguous decode of the query's dtype."""
        parts = (f"KV {self.kv_dtype}" if self.kv_dtype else "", f"{self.page_size}-token pages" if self.paged else "",
                 f"q_len {self.q_len}" if self.q_len > 1 else "")
        return ", ".join(p for p in parts if p)

    def kv_bytes(self) -> int:
        """Bytes of K and V every strategy must read at least once."""
        return sum(self.contexts) * self.kv_heads * self.kv_token_bytes

    def io_bytes(self) -> int:
        """q read + o written (small next to KV, but counted)."""
        return self.batch * self.q_heads * self.q_len * (self.head_dim + self.v_dim) * self.dtype_bytes


def block_head_dim(head_dim: int) -> int:
    """The width of a kernel's K/V and query tiles at `head_dim`: a power of two (tl.arange), FA2's other
    head dims padded up (96 -> 128, 160-224 -> 256), so that a KV tile of 16 KB is a power of two of tokens."""
    return 1 << (head_dim - 1).bit_length()


def query_tile_rows(workload: DecodeWorkload) -> int:
    """BLOCK_M of a kernel's query tile: the packed rows of one q-block (q_len x group, at most
    Q_BLOCK_ROWS), padded to a power of two >= 16 (tl.dot's minimum)."""
    rows = min(workload.q_len * workload.group, Q_BLOCK_ROWS)
    return max(16, 1 << (rows - 1).bit_length())
