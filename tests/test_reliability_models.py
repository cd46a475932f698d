"""Issue 22: model inputs and inputs nothing can run, refused at the edge — exit 2, one line naming the
field, no traceback, nothing written. Root causes: config.json fields used unchecked (sizes, types,
nesting, layer kinds), float32 and SDPA inputs no kernel runs, context sweeps that ask for too much."""

import json

import pytest

from reliability_helpers import assert_refused, write_inputs

LLAMA = dict(model_type="llama", hidden_size=4096, num_attention_heads=32, num_key_value_heads=8,
             num_hidden_layers=32, torch_dtype="bfloat16")


def _cfg(**fields) -> str:
    """A Llama-shaped config.json with `fields` replaced (None deletes a field)."""
    cfg = {**LLAMA, **fields}
    return json.dumps({k: v for k, v in cfg.items() if v is not None})


NESTED = '{"num_attention_heads": 32, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"

# name -> (config.json content, the field the one-line error must name)
CONFIGS = {
    # sizes: a count used as a multiplier or a loop bound
    "layers_huge": (_cfg(num_hidden_layers=10**12), r"model.num_hidden_layers: .*limit of 1,024"),
    "heads_huge": (_cfg(num_attention_heads=10**6), r"model.num_attention_heads: .*limit of 1,024"),
    "file_huge": (_cfg(padding="x" * (5 << 20)), r"model: .*bytes in .*limit of 4,194,304"),
    "nested": (NESTED, r"model: .*nested too deeply"),
    "not_utf8": (b'{"num_attention_heads": 32, "name": "\xff\xfe"}', r"model: .*not UTF-8"),
    # types: every field is a positive integer, a string or a boolean where one is read
    "dtype_list": (_cfg(torch_dtype=["bfloat16"]), r"model.torch_dtype: .*\['bfloat16'\] unsupported"),
    "dtype_int8": (_cfg(torch_dtype="int8"), r"model.torch_dtype"),
    "dtype_new_name": (_cfg(torch_dtype=None, dtype={"a": 1}), r"model.dtype"),
    "heads_zero": (_cfg(num_attention_heads=0), r"model.num_attention_heads: .*positive integer"),
    "heads_float": (_cfg(num_attention_heads=32.0), r"model.num_attention_heads: .*got 32.0"),
    "heads_string": (_cfg(num_attention_heads="32"), r"model.num_attention_heads"),
    "heads_bool": (_cfg(num_attention_heads=True), r"model.num_attention_heads"),
    "kv_negative": (_cfg(num_key_value_heads=-8), r"model.num_key_value_heads"),
    "kv_not_dividing": (_cfg(num_key_value_heads=5), r"model.num_key_value_heads: .*5 KV heads"),
    "kv_above_q": (_cfg(num_attention_heads=8, num_key_value_heads=16, hidden_size=1024), r"model.num_key_value_heads"),
    "head_dim_80": (_cfg(head_dim=80), r"model.head_dim: .*80 unsupported"),
    "hidden_gives_80": (_cfg(hidden_size=2560), r"model.hidden_size: .*head_dim 80"),
    "layers_string": (_cfg(num_hidden_layers="32"), r"model.num_hidden_layers"),
    "text_config_list": (json.dumps({"model_type": "vlm", "text_config": [1]}), r"model.text_config"),
    # sliding windows and layer kinds
    "window_string": (_cfg(sliding_window="4096"), r"model.sliding_window: .*positive integer or null"),
    "window_negative": (_cfg(sliding_window=-1), r"model.sliding_window"),
    "use_window_string": (_cfg(sliding_window=4096, use_sliding_window="yes"), r"model.use_sliding_window"),
    "window_no_layers": (_cfg(sliding_window=4096, num_hidden_layers=None), r"model.num_hidden_layers: .*sliding"),
    "pattern_zero": (_cfg(sliding_window=4096, sliding_window_pattern=0), r"model.sliding_window_pattern"),
    "types_length": (_cfg(layer_types=["full_attention"] * 31), r"model.layer_types: .*31 entries"),
    "types_unknown": (_cfg(layer_types=["full_attention"] * 3 + ["chunked_attention"] * 29), r"model.layer_types\[3\]"),
    "types_no_attention": (_cfg(layer_types=["mamba"] * 32), r"model.layer_types: .*no attention layer"),
    "types_slide_no_window": (_cfg(layer_types=["sliding_attention", "full_attention"] * 16),
                              r"model.sliding_window: .*16 layers slide"),
    "block_type_string": (_cfg(layers_block_type="mamba"), r"model.layers_block_type: .*must be a non-empty list"),
    "jamba_offset": (_cfg(attn_layer_period=8, attn_layer_offset=8), r"model.attn_layer_offset: .*8 must be below"),
    "jamba_period_zero": (_cfg(attn_layer_period=0, attn_layer_offset=0), r"model.attn_layer_period"),
    "bamba_indices": (_cfg(attn_layer_indices=[9, 40]), r"model.attn_layer_indices"),
    "nemotron_pattern": (_cfg(hybrid_override_pattern="M-M*X", num_hidden_layers=5), r"model.hybrid_override_pattern"),
    "hybrid_unexplained": (_cfg(mamba_d_state=16, mamba_expand=2), r"model.mamba_d_state: .*a state-space hybrid"),
    # attention attnsim does not model, refused by the field that says so
    "mla_no_rope": (_cfg(kv_lora_rank=512, q_lora_rank=1536), r"model.qk_rope_head_dim: .*missing"),
    "mla_rank": (_cfg(kv_lora_rank=500, qk_rope_head_dim=64), r"model.kv_lora_rank: .*500 unsupported"),
    "mla_rope": (_cfg(kv_lora_rank=512, qk_rope_head_dim=48), r"model.qk_rope_head_dim: .*48 unsupported"),
    "mla_heads": (_cfg(kv_lora_rank=512, qk_rope_head_dim=64, num_attention_heads="128"),
                  r"model.num_attention_heads: .*integer"),
    "mla_v_head_dim": (_cfg(kv_lora_rank=512, qk_rope_head_dim=64, v_head_dim=0), r"model.v_head_dim"),
    "mla_dense": (_cfg(kv_lora_rank=512, qk_rope_head_dim=64, first_k_dense_replace=99),
                  r"model.first_k_dense_replace: .*99 dense layers"),
    "mla_linear_hybrid": (_cfg(kv_lora_rank=512, qk_rope_head_dim=64, linear_attn_config={"kda_layers": [1]}),
                          r"model.linear_attn_config: .*linear-attention"),
    "q_lora_only": (_cfg(q_lora_rank=1536), r"model.q_lora_rank: .*without kv_lora_rank"),
    "chunked": (_cfg(attention_chunk_size=8192), r"model.attention_chunk_size: .*chunked local attention"),
    # Falcon / multi-query fields
    "multi_query_string": (_cfg(num_key_value_heads=None, multi_query="true"), r"model.multi_query: .*must be true"),
    "falcon_kv_zero": (json.dumps(dict(model_type="falcon", hidden_size=8192, num_attention_heads=128,
                                       new_decoder_architecture=True, num_kv_heads=0, num_hidden_layers=60)),
                       r"model.num_kv_heads"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bad_config_json_is_refused(name, tmp_path, capsys):
    content, field = CONFIGS[name]
    write_inputs(tmp_path, {"config.json": content})
    assert_refused("predict --model {inp}/config.json --out {out}/p.csv", field, tmp_path, capsys)


def test_bad_config_is_refused_by_plan_and_schedule_too(tmp_path, capsys):
    write_inputs(tmp_path, {"config.json": CONFIGS["dtype_list"][0]})
    assert_refused("plan --model {inp}/config.json", r"model.torch_dtype", tmp_path, capsys)
    assert_refused("schedule --model {inp}/config.json", r"model.torch_dtype", tmp_path, capsys)


@pytest.mark.parametrize("command, field", [
    # float32: no decode kernel runs it (ours take float16/bfloat16 q/o and fp16/bf16/fp8 KV; SDPA fp16/bf16)
    ("predict --kv-dtype float32 --out {out}/p.csv", r"kv_dtype: float32: no decode kernel"),
    ("predict --kv-cache-dtype fp32", r"kv_dtype: float32: no decode kernel"),
    ("plan --kv-dtype float", r"kv_dtype: float32"),
    # SDPA baselines on inputs SDPA cannot take: not modelled, so naming only them is an error
    ("predict --strategy torch-flash --page-size 16 --out {out}/p.csv", r"strategy: torch-flash is not modelled.*paged"),
    ("predict --strategy torch-cudnn,torch-flash --kv-dtype fp8", r"strategy: torch-cudnn is not modelled.*fp8|float8"),
    ("predict --strategy torch-flash --q-len 4", r"strategy: torch-flash is not modelled.*q_len 1"),
    ("predict --strategy torch-cudnn --head-dim 256", r"strategy: torch-cudnn is not modelled.*head_dim <= 128"),
    ("schedule --strategy torch-flash --page-size 16", r"strategy: torch-flash is not modelled"),
    # context sweeps: ranges checked piece by piece, and the work they ask for bounded before any is done
    ("predict --context 5k:1k:1k", r"context: '5k:1k:1k': start 5,120 is above stop 1,024"),
    ("predict --context 1k:2k:0", r"context: '1k:2k:0': step must be positive"),
    ("predict --context 1k:2k", r"context: '1k:2k': a range is start:stop:step"),
    ("predict --context 1k:2k:1k:4k", r"context: .*a range is start:stop:step"),
    ("predict --context 1k:64M:1k", r"context: '1k:64M:1k': stop .*limit of 33,554,432"),
    ("predict --context 1k:32M:1", r"context: 33,553,409 values is above the limit of 8,192"),
    ("predict --context 1k:4M:1k --strategy streamk --out {out}/p.csv", r"context: 12,288 simulations .*limit of 8,192"),
    ("predict --context 1k:512k:1k --strategy auto", r"context: 13,312 simulations"),
    ("plan --context 1k:512k:1k", r"context: .*simulations .*limit of 8,192"),
    ("predict --context 1.1k", r"context: '1.1k' is 1126.4, not a whole number"),
    ("predict --context 1.5", r"context: '1.5' is 1.5, not a whole number"),
    ("predict --context 1,5e3", r"context: '5e3' is not a positive integer"),
])
def test_inputs_nothing_can_run_are_refused(command, field, tmp_path, capsys):
    assert_refused(command, field, tmp_path, capsys)


@pytest.mark.parametrize("value, field", [(-1, r"gpu.memory_bytes: must be an integer in \[0,"),
                                          ("80GB", r"gpu.memory_bytes: must be a finite number"),
                                          (1 << 50, r"gpu.memory_bytes: must be an integer in")])
def test_a_profile_s_memory_is_checked(value, field, tmp_path, capsys):
    write_inputs(tmp_path, {"g.json": json.dumps({"base": "h200", "memory_bytes": value})})
    assert_refused("predict --gpu {inp}/g.json --out {out}/p.csv", field, tmp_path, capsys)
