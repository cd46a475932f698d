"""A Hugging Face `config.json` -> the attention shape of a model's decoder layers (`--model PATH`).

Every field used is checked where it is read (InputError naming `model.FIELD`, exit status 2):
- heads: num_attention_heads (Falcon's and GPT-BigCode's older name n_head), num_key_value_heads
  (absent: MHA, as transformers defaults it, or one KV head for a multi-query model). Falcon follows
  its own rule (transformers FalconAttention): `num_kv_heads` when `new_decoder_architecture`
  (Falcon-40B/180B: 8) or when not `multi_query`, else 1 (Falcon-7B; `multi_query` defaults to true);
  GPT-BigCode's `multi_query` (default true) gives 1. Positive integers, at most limits.MAX_HEADS, the
  query heads a multiple of the KV heads;
- head_dim (absent or null: hidden_size / num_attention_heads, n_embd in GPT-BigCode), one FA2 compiles;
- num_hidden_layers (n_layer), at most limits.MAX_LAYERS; which of them attend and which slide:
  scenarios/hf_layers.py (sliding windows, Gemma patterns, Jamba and other hybrids);
- torch_dtype (or `dtype`, its newer name): a string; float32 checkpoints are served in float16 (vLLM's
  `--dtype auto`: "FP16 precision for FP32 and FP16 models"), since no decode kernel runs float32.
A multimodal config's language model sits under `text_config` and is read from there.

Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2: `kv_lora_rank`) is read by
scenarios/hf_mla.py: one latent KV head, its fields checked there.

Refused by the field that says so: chunked local attention (Llama 4: `attention_chunk_size`), a
query-compressed config without a latent KV (`q_lora_rank` and no `kv_lora_rank`), no attention
heads at all (state-space models), and a file that is not a small JSON object (over
limits.MAX_CONFIG_BYTES, not UTF-8, nested deeper than the parser recurses).
"""

from __future__ import annotations

import json
from pathlib import Path

from attnsim import limits
from attnsim.errors import InputError
from attnsim.scenarios import hf_mla
from attnsim.scenarios.hf_layers import layer_plan
from attnsim.simulator.workload import HEAD_DIMS

REFUSED_FIELDS = {"attention_chunk_size": "chunked local attention (Llama 4) is not modelled"}
DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "half": "float16", "fp16": "float16", "bf16": "bfloat16"}
SERVED_AS = {"float32": "float16", "float": "float16", "fp32": "float16"}  # vLLM --dtype auto
FALCON_TYPES = ("falcon", "RefinedWeb", "RefinedWebModel")
MULTI_QUERY_DEFAULT = {"gpt_bigcode": True, **{t: True for t in FALCON_TYPES}}  # their configs' defaults


def looks_like_config(name: str) -> bool:
    """A --model value that names a file (config.json or any .json) rather than a preset."""
    return name.endswith(".json") or Path(name).is_file()


def read_config(path: str | Path) -> dict:
    """The decoder's config table (the `text_config` of a multimodal config)."""
    data = _parse(path, _read_text(path))
    if not isinstance(data, dict):
        raise InputError("model", f"{path}: a config.json holds an object")
    if "num_attention_heads" in data or "n_head" in data or "text_config" not in data:
        return data
    if not isinstance(data["text_config"], dict):
        raise InputError("model.text_config", f"{path}: must be an object (the language model's config)")
    return data["text_config"]


def _read_text(path) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limits.MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise InputError("model", f"cannot read {path}: {exc.strerror or exc}") from None
    limits.check_max(len(raw), limits.MAX_CONFIG_BYTES, "model", f"bytes in {path}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("model", f"{path} is not UTF-8 text") from None


def _parse(path, text: str):
    try:
        return json.loads(text)
    except RecursionError:
        raise InputError("model", f"{path}: JSON nested too deeply to be a config") from None
    except ValueError as exc:
        raise InputError("model", f"{path} is not JSON ({exc})") from None


def shape_fields(path: str | Path) -> dict:
    """ModelShape keyword arguments from a config: name, q_heads, kv_heads, head_dim, layers, window
    fields, dtype, note."""
    cfg = read_config(path)
    _refuse_unmodelled(cfg, path)
    layers = _int_field(cfg, ("num_hidden_layers", "n_layer"), path, required=False, maximum=limits.MAX_LAYERS)
    heads = hf_mla.mla_fields(cfg, path, layers) if hf_mla.is_mla(cfg) else _mha_fields(cfg, path)
    plan = layer_plan(cfg, layers, str(path))
    dtype, dtype_note = _dtype(cfg, path)
    notes = [n for n in (heads.pop("note", ""), plan and plan.note, dtype_note) if n]
    return dict(name=_name(cfg, path), **heads, layers=plan.attention_layers if plan else None, dtype=dtype,
                note="; ".join(notes), window_tokens=plan.window_tokens if plan else 0,
                window_layers=plan.window_layers if plan else 0)


def _mha_fields(cfg: dict, path) -> dict:
    """q_heads, kv_heads, head_dim of a q/K/V-head config."""
    q_heads, kv_heads = _heads(cfg, path)
    return dict(q_heads=q_heads, kv_heads=kv_heads, head_dim=_head_dim(cfg, q_heads, path))


def _name(cfg: dict, path) -> str:
    name = cfg.get("_name_or_path")
    return name if isinstance(name, str) and name else (Path(path).parent.name or Path(path).stem)


def _refuse_unmodelled(cfg: dict, path) -> None:
    if cfg.get("q_lora_rank") is not None and not hf_mla.is_mla(cfg):
        raise InputError("model.q_lora_rank", f"{path}: a compressed query ({cfg['q_lora_rank']!r}) without "
                                              "kv_lora_rank is not an attention attnsim models")
    for key, why in REFUSED_FIELDS.items():
        if cfg.get(key) is not None:
            raise InputError(f"model.{key}", f"{path}: {why} ({key} = {cfg[key]!r})")


def _int_field(cfg: dict, keys: tuple[str, ...], path, required: bool = True, maximum: int | None = None):
    """The first of `keys` present: a positive integer (at most `maximum`), or None if absent and optional."""
    key = next((k for k in keys if cfg.get(k) is not None), keys[0])
    value = cfg.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        what = "missing" if value is None else f"must be a positive integer, got {value!r}"
        raise InputError(f"model.{key}", f"{path}: {what}")
    if maximum is not None:
        limits.check_max(value, maximum, f"model.{key}")
    return value


def _bool_field(cfg: dict, key: str, default: bool, path) -> bool:
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"model.{key}", f"{path}: must be true or false, got {value!r}")
    return value


def _heads(cfg: dict, path) -> tuple[int, int]:
    """(query heads, KV heads) of one layer (see the module docstring for Falcon and multi-query)."""
    q_heads = _int_field(cfg, ("num_attention_heads", "n_head"), path, maximum=limits.MAX_HEADS)
    model_type = str(cfg.get("model_type", ""))
    multi_query = _bool_field(cfg, "multi_query", MULTI_QUERY_DEFAULT.get(model_type, False), path)
    if model_type in FALCON_TYPES:
        # an n_head_kv (the custom-code RefinedWeb configs) is the new architecture, as transformers'
        # convert_custom_code_checkpoint.py converts it
        grouped = (_bool_field(cfg, "new_decoder_architecture", False, path) or not multi_query
                   or cfg.get("n_head_kv") is not None)
        keys = ("num_kv_heads", "n_head_kv")
        kv_heads = (_int_field(cfg, keys, path, False, limits.MAX_HEADS) or q_heads) if grouped else 1
    else:
        keys = ("num_key_value_heads",)
        kv_heads = _int_field(cfg, keys, path, False, limits.MAX_HEADS) or (1 if multi_query else q_heads)
    if kv_heads > q_heads or q_heads % kv_heads:
        raise InputError(f"model.{keys[0]}", f"{path}: {kv_heads} KV heads do not divide the {q_heads} query heads")
    return q_heads, kv_heads


def _head_dim(cfg: dict, q_heads: int, path) -> int:
    head_dim = _int_field(cfg, ("head_dim",), path, required=False)
    field = "model.head_dim"
    if head_dim is None:
        hidden = _int_field(cfg, ("hidden_size", "n_embd"), path)
        if hidden % q_heads:
            raise InputError("model.hidden_size", f"{path}: {hidden} is not a multiple of num_attention_heads "
                                                  f"{q_heads}; give head_dim")
        head_dim, field = hidden // q_heads, "model.hidden_size"
    if head_dim not in HEAD_DIMS:
        raise InputError(field, f"{path}: head_dim {head_dim} unsupported; the decode kernels take {HEAD_DIMS}")
    return head_dim


def _dtype(cfg: dict, path) -> tuple[str | None, str]:
    """(the dtype the model is served in or None if the config names none, a note when it differs)."""
    for key in ("torch_dtype", "dtype"):
        value = cfg.get(key)
        if value is None:
            continue
        name = value.removeprefix("torch.") if isinstance(value, str) else value
        if isinstance(name, str) and name in DTYPES:
            return DTYPES[name], ""
        if isinstance(name, str) and name in SERVED_AS:
            return SERVED_AS[name], f"{key} {name}: served in {SERVED_AS[name]} (vLLM's --dtype auto)"
        raise InputError(f"model.{key}", f"{path}: {value!r} unsupported; float16, bfloat16 or float32 "
                                         "(served in float16)")
    return None, ""
