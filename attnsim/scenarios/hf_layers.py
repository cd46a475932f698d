"""Which decoder layers of a Hugging Face config attend, and over how many tokens.

Decode attention reads a KV cache only in attention layers, and a sliding-window layer reads only
the last `sliding_window` tokens. transformers says which layer is which in these fields (read in
this order; the first present decides):

- `layer_types`: one entry per layer, "full_attention" / "sliding_attention" (Gemma-3, gpt-oss,
  Qwen3-Next), or a kind without a KV cache ("linear_attention", "mamba", "conv": Qwen3-Next, LFM2,
  Granite hybrids);
- `layers_block_type`: "attention" / "mamba" per layer (Jamba-style hybrids);
- `attn_layer_period` + `attn_layer_offset` (Jamba: layer i attends when i % period == offset);
- `attn_layer_indices` (Bamba), `hybrid_override_pattern` (Nemotron-H: '*' marks attention);
- otherwise every layer attends, and a `sliding_window` (null: none) applies to
  every layer (Mistral v0.1, Phi-3, Starcoder2), unless `use_sliding_window` is false (Qwen2: the
  window is not used), `max_window_layers` splits them (Qwen2 with the window on: layers from that
  index slide), or a pattern alternates them: `sliding_window_pattern` p (layer i slides unless
  (i + 1) % p == 0; Gemma-3 6, Cohere2 4), and Gemma-2's fixed alternation (p = 2).

A config with state-space fields (`mamba_*`, `ssm_*`) none of those fields explains is refused:
which of its layers attend is not something attnsim can read.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnsim import limits
from attnsim.errors import InputError

FULL = frozenset({"full_attention", "attention", "global_attention"})
WINDOWED = frozenset({"sliding_attention"})
NO_KV = frozenset({"linear_attention", "mamba", "mamba2", "conv", "ssm"})  # no per-token KV cache
DEFAULT_PATTERNS = {"gemma2": 2, "gemma3": 6, "gemma3_text": 6, "cohere2": 4}  # configs' defaults
HYBRID_PREFIXES = ("mamba_", "ssm_")
NEMOTRON_CODES = {"*": "attention", "M": "mamba", "-": "mlp", "E": "moe"}


@dataclass(frozen=True)
class LayerPlan:
    """The attention layers of a model and how many of them slide."""

    attention_layers: int
    window_tokens: int = 0  # 0: no sliding window
    window_layers: int = 0
    note: str = ""


def layer_plan(cfg: dict, layers: int | None, where: str) -> LayerPlan | None:
    """The model's attention layers (None: `layers` unknown and nothing else says them)."""
    kinds = _kinds(cfg, layers, where)
    window = _window(cfg, where)
    if kinds is None:
        if layers is None:
            if window:
                raise InputError("model.num_hidden_layers", f"{where}: missing; a sliding-window model needs it")
            return None
        kinds = _pattern_kinds(cfg, layers, window, where)
    return _plan(kinds, window, cfg, where)


def _plan(kinds: list[str], window: int, cfg: dict, where: str) -> LayerPlan:
    """Counts of `kinds`; a hybrid's plain "attention" layers use the window when there is one
    (Jamba's attention layers take `sliding_window`)."""
    kinds = ["sliding_attention" if k == "attention" and window else k for k in kinds]
    attention = sum(k in FULL or k in WINDOWED for k in kinds)
    sliding = sum(k in WINDOWED for k in kinds)
    if attention == 0:
        raise InputError("model.layer_types", f"{where}: no attention layer among the {len(kinds)}; "
                                              "nothing reads a KV cache")
    if sliding and not window:
        raise InputError("model.sliding_window", f"{where}: {sliding} layers slide but sliding_window is "
                                                 f"{cfg.get('sliding_window')!r}; give the window in tokens")
    notes = [f"{attention} of {len(kinds)} layers attend (the others hold no KV cache)"] * (attention < len(kinds))
    if sliding and window >= limits.MAX_CONTEXT:  # longer than any context modelled: it never clips
        return LayerPlan(attention, 0, 0, "; ".join(notes))
    if sliding:
        notes.append(f"{sliding} of {attention} attention layers read the last {window} tokens (sliding_window)")
    return LayerPlan(attention, window if sliding else 0, sliding, "; ".join(notes))


def _window(cfg: dict, where: str) -> int:
    """The sliding window in tokens (0: none, or one longer than any context attnsim models)."""
    window = cfg.get("sliding_window")
    if window is None:
        return 0
    if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
        raise InputError("model.sliding_window", f"{where}: must be a positive integer or null, got {window!r}")
    use = cfg.get("use_sliding_window", True)
    if not isinstance(use, bool):
        raise InputError("model.use_sliding_window", f"{where}: must be true or false, got {use!r}")
    return window if use else 0


def _kinds(cfg: dict, layers: int | None, where: str) -> list[str] | None:
    """Per-layer kinds from an explicit field, or None when the config has none."""
    for key in ("layer_types", "layers_block_type"):
        if cfg.get(key) is not None:
            return _kind_list(cfg[key], key, layers, where)
    if cfg.get("attn_layer_period") is not None or cfg.get("attn_layer_offset") is not None:
        return _periodic(cfg, _need_layers(layers, "attn_layer_period", where), where)
    if cfg.get("attn_layer_indices") is not None:
        return _indexed(cfg["attn_layer_indices"], _need_layers(layers, "attn_layer_indices", where), where)
    if cfg.get("hybrid_override_pattern") is not None:
        return _nemotron(cfg["hybrid_override_pattern"], layers, where)
    hybrid = sorted(k for k in cfg if k.startswith(HYBRID_PREFIXES))
    if hybrid:
        raise InputError(f"model.{hybrid[0]}", f"{where}: a state-space hybrid whose attention layers no field "
                                               "attnsim reads names (layer_types, layers_block_type, "
                                               "attn_layer_period/offset, attn_layer_indices, hybrid_override_pattern)")
    return None


def _need_layers(layers: int | None, key: str, where: str) -> int:
    if layers is None:
        raise InputError("model.num_hidden_layers", f"{where}: missing; {key} needs the layer count")
    return layers


def _kind_list(value, key: str, layers: int | None, where: str) -> list[str]:
    field = f"model.{key}"
    if not isinstance(value, list) or not value:
        raise InputError(field, f"{where}: must be a non-empty list of layer kinds")
    limits.check_max(len(value), limits.MAX_LAYERS, field, "layers")
    if layers is not None and len(value) != layers:
        raise InputError(field, f"{where}: {len(value)} entries for num_hidden_layers {layers}")
    for i, kind in enumerate(value):
        if not isinstance(kind, str) or kind not in FULL | WINDOWED | NO_KV:
            known = ", ".join(sorted(FULL | WINDOWED | NO_KV))
            raise InputError(f"{field}[{i}]", f"{where}: {kind!r} is not a layer kind attnsim models ({known})")
    return value


def _layer_int(cfg: dict, key: str, where: str, minimum: int) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"model.{key}", f"{where}: must be an integer >= {minimum}, got {value!r}")
    return value


def _periodic(cfg: dict, layers: int, where: str) -> list[str]:
    """Jamba: layer i attends when i % attn_layer_period == attn_layer_offset."""
    period = _layer_int(cfg, "attn_layer_period", where, 1)
    offset = _layer_int(cfg, "attn_layer_offset", where, 0)
    if offset >= period:
        raise InputError("model.attn_layer_offset", f"{where}: {offset} must be below attn_layer_period {period}")
    return ["attention" if i % period == offset else "mamba" for i in range(layers)]


def _indexed(value, layers: int, where: str) -> list[str]:
    """Bamba: the indices of the attention layers."""
    ok = isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < layers
                                         for i in value)
    if not ok or len(set(value)) != len(value):
        raise InputError("model.attn_layer_indices", f"{where}: must list distinct layer indices in [0, {layers})")
    chosen = set(value)
    return ["attention" if i in chosen else "mamba" for i in range(layers)]


def _nemotron(value, layers: int | None, where: str) -> list[str]:
    """Nemotron-H: one character per layer, '*' attention, 'M' Mamba, '-' MLP, 'E' MoE."""
    field = "model.hybrid_override_pattern"
    if not isinstance(value, str) or not value or any(c not in NEMOTRON_CODES for c in value):
        raise InputError(field, f"{where}: must be a string of {''.join(NEMOTRON_CODES)} (one per layer)")
    limits.check_max(len(value), limits.MAX_LAYERS, field, "layers")
    if layers is not None and len(value) != layers:
        raise InputError(field, f"{where}: {len(value)} layers for num_hidden_layers {layers}")
    return ["attention" if c == "*" else "mamba" for c in value]


def _pattern_kinds(cfg: dict, layers: int, window: int, where: str) -> list[str]:
    """Every layer attends; which slide (see the module docstring)."""
    if not window:
        return ["full_attention"] * layers
    pattern = cfg.get("sliding_window_pattern", DEFAULT_PATTERNS.get(str(cfg.get("model_type", ""))))
    if pattern is not None:
        if isinstance(pattern, bool) or not isinstance(pattern, int) or pattern < 1:
            raise InputError("model.sliding_window_pattern", f"{where}: must be a positive integer, got {pattern!r}")
        return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(layers)]
    if cfg.get("use_sliding_window") is True and cfg.get("max_window_layers") is not None:
        first = _layer_int(cfg, "max_window_layers", where, 0)
        return ["sliding_attention" if i >= first else "full_attention" for i in range(layers)]
    return ["sliding_attention"] * layers
