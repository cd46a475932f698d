"""Attention shapes of real models (per decoder layer), for `--model NAME` and scenario files.

Figures from each model's published config.json (num_attention_heads, num_key_value_heads,
head_dim or hidden_size / heads, num_hidden_layers). One decode step of one layer reads
2 x kv_heads x head_dim x dtype_bytes bytes of K/V per cached token; a whole-model step reads
`layers` times that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from attnsim.errors import InputError
from attnsim.simulator.workload import DecodeWorkload


@dataclass(frozen=True)
class ModelShape:
    """What one attention layer of a model looks like to a decode kernel."""

    name: str
    q_heads: int
    kv_heads: int
    head_dim: int
    layers: int | None = None  # None for raw shapes that are not a real model
    note: str = ""  # what the shape leaves out (sliding windows, MoE), shown in reports

    @property
    def group(self) -> int:
        """q-heads per kv-head: 1 = MHA, q_heads = MQA, else GQA."""
        return self.q_heads // self.kv_heads

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """K+V bytes one cached token costs in one layer."""
        return 2 * self.kv_heads * self.head_dim * dtype_bytes

    def workload(self, batch: int, context, dtype: str = "float16", q_len: int = 1) -> DecodeWorkload:
        """One decode step of one layer; `context` is a length or one length per sequence."""
        return DecodeWorkload.build(batch, self.q_heads, self.kv_heads, self.head_dim, context, q_len, dtype)


_SLIDING = "alternate layers use a 4096-token sliding window (modelled as full attention)"
_SHAPES = [
    ModelShape("llama-2-7b", 32, 32, 128, 32),
    ModelShape("llama-2-13b", 40, 40, 128, 40),
    ModelShape("llama-2-70b", 64, 8, 128, 80),
    ModelShape("llama-3.1-8b", 32, 8, 128, 32),
    ModelShape("llama-3.1-70b", 64, 8, 128, 80),
    ModelShape("llama-3.1-405b", 128, 8, 128, 126),
    ModelShape("llama-3.2-1b", 32, 8, 64, 16),
    ModelShape("llama-3.2-3b", 24, 8, 128, 28),
    ModelShape("mistral-7b", 32, 8, 128, 32, "v0.1 used a 4096-token sliding window; v0.2+ attend fully"),
    ModelShape("mistral-nemo-12b", 32, 8, 128, 40),
    ModelShape("mixtral-8x7b", 32, 8, 128, 32, "MoE: attention is dense; experts do not change it"),
    ModelShape("qwen2.5-7b", 28, 4, 128, 28),
    ModelShape("qwen2.5-14b", 40, 8, 128, 48),
    ModelShape("qwen2.5-32b", 40, 8, 128, 64),
    ModelShape("qwen2.5-72b", 64, 8, 128, 80),
    ModelShape("gemma-2-9b", 16, 8, 256, 42, _SLIDING),
    ModelShape("gemma-2-27b", 32, 16, 128, 46, _SLIDING),
    ModelShape("phi-3-mini", 32, 32, 96, 32),
]
MODELS: dict[str, ModelShape] = {m.name: m for m in _SHAPES}

# Hugging Face repo names carry an org prefix and release suffixes; the shape does not change.
_SUFFIXES = re.compile(r"(-(instruct|chat|hf|it|base|\d+k|v\d+(\.\d+)*))+$")


def canonical_name(name: str) -> str:
    """'meta-llama/Llama-3.1-8B-Instruct' -> 'llama-3.1-8b'; 'llama3.1-8b' -> 'llama-3.1-8b'."""
    key = name.strip().lower().split("/")[-1]
    key = _SUFFIXES.sub("", key)
    key = re.sub(r"^meta-(?=llama)", "", key)
    return re.sub(r"^(llama|gemma|phi)(\d)", r"\1-\2", key)


def from_name(name: str) -> ModelShape:
    key = canonical_name(name)
    if key not in MODELS:
        raise InputError("model", f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[key]
