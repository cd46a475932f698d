"""A Hugging Face `config.json` -> the attention shape of one decoder layer (`--model PATH`).

Read fields (transformers' names): num_attention_heads, num_key_value_heads (absent: MHA, as
transformers defaults it), head_dim (absent or null: hidden_size / num_attention_heads),
num_hidden_layers, torch_dtype (or `dtype`, its newer name). A multimodal config's language model
sits under `text_config` and is read from there.

Configs whose attention is not q/K/V heads over a full KV cache are refused with the field that
says so: multi-head latent attention (DeepSeek-V2/V3, Kimi: `kv_lora_rank` / `q_lora_rank`), no
attention heads at all (state-space models). Sliding windows are modelled as full attention and
noted.
"""

from __future__ import annotations

import json
from pathlib import Path

from attnsim.errors import InputError

MLA_FIELDS = ("kv_lora_rank", "q_lora_rank")
SLIDING_FIELDS = ("sliding_window", "attention_chunk_size")
DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32", "half": "float16", "float": "float32"}


def looks_like_config(name: str) -> bool:
    """A --model value that names a file (config.json or any .json) rather than a preset."""
    return name.endswith(".json") or Path(name).is_file()


def read_config(path: str | Path) -> dict:
    """The decoder's config table (the `text_config` of a multimodal config)."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError("model", f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError("model", f"{path} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError("model", f"{path}: a config.json holds an object")
    text = data.get("text_config")
    return text if "num_attention_heads" not in data and isinstance(text, dict) else data


def _int_field(cfg: dict, key: str, path, required: bool = True) -> int | None:
    value = cfg.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        what = "missing" if value is None else f"must be a positive integer, got {value!r}"
        raise InputError(f"model.{key}", f"{path}: {what}")
    return value


def shape_fields(path: str | Path) -> dict:
    """ModelShape keyword arguments from a config: name, q_heads, kv_heads, head_dim, layers, dtype, note."""
    cfg = read_config(path)
    for key in MLA_FIELDS:
        if cfg.get(key) is not None:
            raise InputError(f"model.{key}", f"{path}: multi-head latent attention (MLA, {key} = {cfg[key]}) "
                                             "is not modelled; the decode model covers q/K/V-head attention")
    q_heads = _int_field(cfg, "num_attention_heads", path)
    kv_heads = _int_field(cfg, "num_key_value_heads", path, required=False) or q_heads
    head_dim = _int_field(cfg, "head_dim", path, required=False)
    if head_dim is None:
        hidden = _int_field(cfg, "hidden_size", path)
        if hidden % q_heads:
            raise InputError("model.hidden_size", f"{path}: {hidden} is not a multiple of num_attention_heads "
                                                  f"{q_heads}; give head_dim")
        head_dim = hidden // q_heads
    dtype = cfg.get("torch_dtype", cfg.get("dtype"))
    if dtype is not None and dtype not in DTYPES:
        raise InputError("model.torch_dtype", f"{path}: {dtype!r} unsupported; float16, bfloat16 or float32")
    windows = [k for k in SLIDING_FIELDS if cfg.get(k)]
    note = f"{windows[0]} = {cfg[windows[0]]}: modelled as full attention" if windows else ""
    return dict(name=cfg.get("_name_or_path") or Path(path).parent.name or Path(path).stem, q_heads=q_heads,
                kv_heads=kv_heads, head_dim=head_dim, layers=_int_field(cfg, "num_hidden_layers", path, False),
                dtype=DTYPES.get(dtype), note=note)
