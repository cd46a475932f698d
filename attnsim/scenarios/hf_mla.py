"""The MLA fields of a Hugging Face config.json (DeepSeek-V2/V3, Kimi-K2: `kv_lora_rank` present).

What one decode layer reads, with the projections absorbed (simulator/mla.py): one latent KV head of
kv_lora_rank + qk_rope_head_dim elements per token, num_attention_heads query heads. Each field is
checked where it is read (InputError naming `model.FIELD`):
- kv_lora_rank, qk_rope_head_dim: required, powers of two the MLA kernels tile (mla.LORA_RANKS,
  mla.ROPE_DIMS); 512 and 64 in every released DeepSeek and Kimi model;
- num_attention_heads: required (query heads); num_key_value_heads is the un-absorbed form's and
  is not read (the latent head is the one KV head, replicated under tensor parallelism);
- v_head_dim, qk_nope_head_dim (the per-head widths W_UV and W_UK absorb) and q_lora_rank (null:
  no query compression, DeepSeek-V2-Lite): positive integers when present;
- first_k_dense_replace: an integer in [0, num_hidden_layers] when present. It makes the first
  layers' FFNs dense instead of MoE; their attention is MLA like every other layer's, so every
  layer counts (DeepSeek-V3: 61 MLA layers, 3 of them with a dense FFN).
Refused: `linear_attn_config` (Kimi-Linear's KDA + MLA hybrid; which layers attend is not read).
"""

from __future__ import annotations

from attnsim import limits
from attnsim.errors import InputError
from attnsim.simulator import mla

MLA_MARKER = "kv_lora_rank"  # a config with this field (not null) is MLA
REFUSED = {"linear_attn_config": "a hybrid of linear-attention (KDA) and MLA layers is not modelled"}


def is_mla(cfg: dict) -> bool:
    return cfg.get(MLA_MARKER) is not None


def _field(cfg: dict, key: str, path, required: bool, minimum: int = 1):
    """An integer >= minimum, or None when absent (or null) and optional."""
    value = cfg.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "missing (an MLA config names it)" if value is None else f"must be an integer >= {minimum}, got {value!r}"
        raise InputError(f"model.{key}", f"{path}: {what}")
    return value


def _power_of_two(cfg: dict, key: str, allowed: tuple[int, ...], path) -> int:
    value = _field(cfg, key, path, required=True)
    if value not in allowed:
        raise InputError(f"model.{key}", f"{path}: {value} unsupported; the MLA kernels take {allowed}")
    return value


def mla_fields(cfg: dict, path, layers: int | None) -> dict:
    """ModelShape keyword arguments of an MLA config's attention: q_heads, kv_heads, head_dim,
    kv_lora_rank, and a note saying how it was read."""
    for key, why in REFUSED.items():
        if cfg.get(key) is not None:
            raise InputError(f"model.{key}", f"{path}: {why} ({key} is set)")
    rank = _power_of_two(cfg, "kv_lora_rank", mla.LORA_RANKS, path)
    rope = _power_of_two(cfg, "qk_rope_head_dim", mla.ROPE_DIMS, path)
    q_heads = _field(cfg, "num_attention_heads", path, required=True)
    limits.check_max(q_heads, limits.MAX_HEADS, "model.num_attention_heads")
    for key in ("v_head_dim", "qk_nope_head_dim", "q_lora_rank"):
        _field(cfg, key, path, required=False)
    dense = _field(cfg, "first_k_dense_replace", path, required=False, minimum=0)
    if dense is not None and layers is not None and dense > layers:
        raise InputError("model.first_k_dense_replace", f"{path}: {dense} dense layers of a model with "
                                                        f"num_hidden_layers {layers}")
    note = f"MLA: one latent KV head of {rank} + {rope} per layer (replicated under TP)"
    return dict(q_heads=q_heads, kv_heads=1, head_dim=rank + rope, kv_lora_rank=rank, note=note)
