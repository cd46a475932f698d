"""Attention shapes of real models (per decoder layer), for `--model NAME` and scenario files.

Figures from each model's published config.json (num_attention_heads, num_key_value_heads,
head_dim or hidden_size / heads, num_hidden_layers). One decode step of one layer reads
2 x kv_heads x head_dim x dtype_bytes bytes of K/V per cached token; a whole-model step reads
`layers` times that. `layers` counts the attention layers (a hybrid's others hold no KV cache);
`window_layers` of them read only the last `window_tokens` tokens (a sliding window).

`--model` also takes a Hugging Face config.json (scenarios/hf_config.py), and `--tp N` shards a
shape over N GPUs as vLLM does: q_heads / N per GPU, kv_heads / N, or one replicated kv-head per
GPU when N > kv_heads.

MLA models (DeepSeek-V2/V3, Kimi-K2; simulator/mla.py) decode with one latent KV head per layer:
`kv_heads` 1, `head_dim` kv_lora_rank + qk_rope_head_dim (576), `kv_lora_rank` 512; a token costs
head_dim x dtype bytes (1,152 in bf16) per layer, and `--tp N` leaves q_heads / N query heads per
GPU beside the whole (replicated) latent cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from attnsim.errors import InputError
from attnsim.scenarios import hf_config
from attnsim.simulator.workload import DecodeWorkload


@dataclass(frozen=True)
class ModelShape:
    """What one attention layer of a model looks like to a decode kernel."""

    name: str
    q_heads: int
    kv_heads: int
    head_dim: int
    layers: int | None = None  # attention layers; None for raw shapes that are not a real model
    note: str = ""  # what the shape leaves out or how it reads its config, shown in reports
    dtype: str | None = None  # the dtype it is served in (config.json torch_dtype); None: unknown
    tp: int = 1  # GPUs the heads are sharded over (q_heads, kv_heads are per GPU)
    window_tokens: int = 0  # sliding window of its windowed layers (0: none)
    window_layers: int = 0  # attention layers that use it
    kv_lora_rank: int = 0  # MLA: the latent rank (head_dim = kv_lora_rank + rope dims, kv_heads 1); 0: not MLA

    @property
    def group(self) -> int:
        """q-heads per kv-head: 1 = MHA, q_heads = MQA, else GQA."""
        return self.q_heads // self.kv_heads

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """K+V bytes one cached token costs in one layer (MLA: its latent vector)."""
        return self.kv_heads * self.head_dim * dtype_bytes * (1 if self.kv_lora_rank else 2)

    def workload(self, batch: int, context, dtype: str = "float16", q_len: int = 1, page_size: int = 0,
                 kv_dtype: str = "") -> DecodeWorkload:
        """One decode step of one layer on one GPU (`layers` carried for per-token totals); `context`
        is a length or one length per sequence."""
        return DecodeWorkload.build(batch, self.q_heads, self.kv_heads, self.head_dim, context, q_len, dtype,
                                    page_size, kv_dtype, self.layers, self.window_tokens, self.window_layers,
                                    self.tp, self.kv_lora_rank)

    def sharded(self, tp: int) -> "ModelShape":
        """The heads one GPU of a tp-way tensor-parallel group holds (vLLM's rule): q_heads / tp, and
        kv_heads / tp, or 1 (replicated) when tp >= kv_heads. tp must divide q_heads, and divide
        kv_heads or be a multiple of it."""
        if isinstance(tp, bool) or not isinstance(tp, int) or tp <= 0:
            raise InputError("tp", f"must be a positive integer, got {tp!r}")
        if self.q_heads % tp:
            raise InputError("tp", f"{tp} does not divide the {self.q_heads} query heads of {self.name}")
        if (self.kv_heads % tp if tp < self.kv_heads else tp % self.kv_heads):
            raise InputError("tp", f"{tp} neither divides nor is a multiple of the {self.kv_heads} KV heads "
                                   f"of {self.name}")
        return replace(self, q_heads=self.q_heads // tp, kv_heads=max(1, self.kv_heads // tp), tp=self.tp * tp)


_GEMMA2 = "alternate layers read the last 4096 tokens (sliding_window)"
_MLA = "MLA: one latent KV head (512 + 64) per layer, replicated on every GPU of a TP group"
_SHAPES = [
    ModelShape("llama-2-7b", 32, 32, 128, 32),
    ModelShape("llama-2-13b", 40, 40, 128, 40),
    ModelShape("llama-2-70b", 64, 8, 128, 80),
    ModelShape("llama-3.1-8b", 32, 8, 128, 32),
    ModelShape("llama-3.1-70b", 64, 8, 128, 80),
    ModelShape("llama-3.1-405b", 128, 8, 128, 126),
    ModelShape("llama-3.3-70b", 64, 8, 128, 80),
    ModelShape("llama-3.2-1b", 32, 8, 64, 16),
    ModelShape("llama-3.2-3b", 24, 8, 128, 28),
    ModelShape("mistral-7b", 32, 8, 128, 32, "v0.2+: full attention (mistral-7b-v0.1: a 4096-token window)"),
    ModelShape("mistral-7b-v0.1", 32, 8, 128, 32, "every layer reads the last 4096 tokens (sliding_window)",
               window_tokens=4096, window_layers=32),
    ModelShape("mistral-nemo-12b", 32, 8, 128, 40),
    ModelShape("mixtral-8x7b", 32, 8, 128, 32, "MoE: attention is dense; experts do not change it"),
    ModelShape("qwen2.5-7b", 28, 4, 128, 28),
    ModelShape("qwen2.5-14b", 40, 8, 128, 48),
    ModelShape("qwen2.5-32b", 40, 8, 128, 64),
    ModelShape("qwen2.5-72b", 64, 8, 128, 80),
    ModelShape("qwen3-8b", 32, 8, 128, 36),
    ModelShape("qwen3-32b", 64, 8, 128, 64),
    ModelShape("gemma-2-9b", 16, 8, 256, 42, _GEMMA2, window_tokens=4096, window_layers=21),
    ModelShape("gemma-2-27b", 32, 16, 128, 46, _GEMMA2, window_tokens=4096, window_layers=23),
    ModelShape("phi-3-mini", 32, 32, 96, 32),
    # MLA (config.json: num_attention_heads, num_hidden_layers, kv_lora_rank, qk_rope_head_dim; every layer
    # attends with MLA, first_k_dense_replace only makes the first FFNs dense)
    ModelShape("deepseek-v3", 128, 1, 576, 61, _MLA, "bfloat16", kv_lora_rank=512),
    ModelShape("deepseek-r1", 128, 1, 576, 61, _MLA, "bfloat16", kv_lora_rank=512),
    ModelShape("deepseek-v2", 128, 1, 576, 60, _MLA, "bfloat16", kv_lora_rank=512),
    ModelShape("deepseek-v2-lite", 16, 1, 576, 27, _MLA, "bfloat16", kv_lora_rank=512),
    ModelShape("kimi-k2", 64, 1, 576, 61, _MLA, "bfloat16", kv_lora_rank=512),
]
MODELS: dict[str, ModelShape] = {m.name: m for m in _SHAPES}

# Hugging Face repo names carry an org prefix and release suffixes; the shape does not change, except
# where a preset names a version (mistral-7b-v0.1: its sliding window).
_SUFFIXES = re.compile(r"(-(instruct|chat|hf|it|base|\d+k|v\d+(\.\d+)*))+$")
_RELEASE_WORDS = re.compile(r"-(instruct|chat|hf|it|base|\d+k)(?=-|$)")


def canonical_name(name: str) -> str:
    """'meta-llama/Llama-3.1-8B-Instruct' -> 'llama-3.1-8b'; 'llama3.1-8b' -> 'llama-3.1-8b';
    'mistralai/Mistral-7B-Instruct-v0.1' -> 'mistral-7b-v0.1' (a versioned preset)."""
    key = name.strip().lower().split("/")[-1]
    key = re.sub(r"^meta-(?=llama)", "", key)
    key = re.sub(r"^(llama|gemma|phi)(\d)", r"\1-\2", key)
    versioned = _RELEASE_WORDS.sub("", key)
    return versioned if versioned in MODELS else _SUFFIXES.sub("", key)


def from_name(name: str) -> ModelShape:
    """A preset by (Hugging Face) name, or the shape a config.json describes."""
    if hf_config.looks_like_config(name):
        return ModelShape(**hf_config.shape_fields(name))
    key = canonical_name(name)
    if key not in MODELS:
        raise InputError("model", f"unknown model {name!r}; known: {', '.join(MODELS)}, or a config.json path")
    return MODELS[key]
