"""Attention shapes of real models (per decoder layer), for `--model NAME`."""

from __future__ import annotations

from dataclasses import dataclass

from attnsim.errors import InputError


@dataclass(frozen=True)
class ModelShape:
    name: str
    q_heads: int
    kv_heads: int
    head_dim: int
    layers: int


_SHAPES = [
    ModelShape("llama-2-7b", 32, 32, 128, 32),
    ModelShape("llama-2-13b", 40, 40, 128, 40),
    ModelShape("llama-2-70b", 64, 8, 128, 80),
    ModelShape("llama-3.1-8b", 32, 8, 128, 32),
    ModelShape("llama-3.1-70b", 64, 8, 128, 80),
    ModelShape("llama-3.1-405b", 128, 8, 128, 126),
    ModelShape("mistral-7b", 32, 8, 128, 32),
    ModelShape("mixtral-8x7b", 32, 8, 128, 32),
    ModelShape("qwen2.5-7b", 28, 4, 128, 28),
    ModelShape("qwen2.5-72b", 64, 8, 128, 80),
    ModelShape("gemma-2-9b", 16, 8, 256, 42),
    ModelShape("gemma-2-27b", 32, 16, 128, 46),
    ModelShape("phi-3-mini", 32, 32, 96, 32),
]
MODELS: dict[str, ModelShape] = {m.name: m for m in _SHAPES}


def from_name(name: str) -> ModelShape:
    key = name.strip().lower()
    if key not in MODELS:
        raise InputError("model", f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[key]
