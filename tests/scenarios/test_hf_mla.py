"""MLA models from their Hugging Face config.json (scenarios/hf_mla.py) and by name: the fields of
DeepSeek-V3, Kimi-K2 and DeepSeek-V2-Lite as published, tensor parallelism over the query heads with
the latent cache replicated, every layer counted, and each bad field refused by name."""

from __future__ import annotations

import json

import pytest

from attnsim.errors import InputError
from attnsim.scenarios import models

# The attention fields of the published configs (deepseek-ai/DeepSeek-V3, moonshotai/Kimi-K2-Instruct,
# deepseek-ai/DeepSeek-V2-Lite); num_key_value_heads is the un-absorbed form's and is not read.
DEEPSEEK_V3 = dict(model_type="deepseek_v3", hidden_size=7168, num_attention_heads=128, num_key_value_heads=128,
                   num_hidden_layers=61, first_k_dense_replace=3, kv_lora_rank=512, q_lora_rank=1536,
                   qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, torch_dtype="bfloat16")
KIMI_K2 = {**DEEPSEEK_V3, "model_type": "kimi_k2", "num_attention_heads": 64, "num_key_value_heads": 64,
           "first_k_dense_replace": 1}
V2_LITE = {**DEEPSEEK_V3, "model_type": "deepseek_v2", "hidden_size": 2048, "num_attention_heads": 16,
           "num_key_value_heads": 16, "num_hidden_layers": 27, "first_k_dense_replace": 1, "q_lora_rank": None}


def _config(tmp_path, fields: dict) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(fields))
    return str(path)


@pytest.mark.parametrize("fields, heads, layers", [(DEEPSEEK_V3, 128, 61), (KIMI_K2, 64, 61), (V2_LITE, 16, 27)])
def test_published_configs_read_as_one_latent_head(tmp_path, fields, heads, layers):
    shape = models.from_name(_config(tmp_path, fields))
    assert (shape.q_heads, shape.kv_heads, shape.head_dim, shape.kv_lora_rank) == (heads, 1, 576, 512)
    assert shape.layers == layers  # first_k_dense_replace makes FFNs dense; every layer's attention is MLA
    assert shape.dtype == "bfloat16" and "MLA" in shape.note
    assert shape.kv_bytes_per_token(2) == 1152


@pytest.mark.parametrize("name, heads", [("deepseek-ai/DeepSeek-V3", 128), ("deepseek-ai/DeepSeek-R1", 128),
                                         ("moonshotai/Kimi-K2-Instruct", 64), ("deepseek-ai/DeepSeek-V2-Lite-Chat", 16)])
def test_presets_by_hugging_face_name(name, heads):
    shape = models.from_name(name)
    assert (shape.q_heads, shape.kv_heads, shape.kv_lora_rank) == (heads, 1, 512)


@pytest.mark.parametrize("tp, heads", [(1, 128), (8, 16), (16, 8), (128, 1)])
def test_tensor_parallel_splits_the_query_heads_and_replicates_the_latent(tmp_path, tp, heads):
    shape = models.from_name(_config(tmp_path, DEEPSEEK_V3)).sharded(tp)
    w = shape.workload(4, 8192, "bfloat16", page_size=64)
    assert (w.q_heads, w.kv_heads, w.tp, w.kv_lora_rank, w.layers) == (heads, 1, tp, 512, 61)
    assert w.kv_bytes() == 4 * 8192 * 1152  # the same latent bytes on every GPU of the group


@pytest.mark.parametrize("change, field", [
    (dict(qk_rope_head_dim=None), "model.qk_rope_head_dim"),
    (dict(qk_rope_head_dim=48), "model.qk_rope_head_dim"),
    (dict(kv_lora_rank=384), "model.kv_lora_rank"),
    (dict(kv_lora_rank="512"), "model.kv_lora_rank"),
    (dict(num_attention_heads=None), "model.num_attention_heads"),
    (dict(num_attention_heads=4096), "model.num_attention_heads"),
    (dict(v_head_dim=-1), "model.v_head_dim"),
    (dict(qk_nope_head_dim=1.5), "model.qk_nope_head_dim"),
    (dict(q_lora_rank=0), "model.q_lora_rank"),
    (dict(first_k_dense_replace=62), "model.first_k_dense_replace"),
    (dict(first_k_dense_replace=-1), "model.first_k_dense_replace"),
    (dict(linear_attn_config={"full_attn_layers": [4, 8]}), "model.linear_attn_config"),
    (dict(num_hidden_layers=0), "model.num_hidden_layers"),
    (dict(torch_dtype="int4"), "model.torch_dtype"),
])
def test_bad_mla_fields_are_refused_by_name(tmp_path, change, field):
    fields = {k: v for k, v in {**DEEPSEEK_V3, **change}.items() if v is not None}
    with pytest.raises(InputError) as err:
        models.from_name(_config(tmp_path, fields))
    assert err.value.field == field
