"""Model inputs of serving: Hugging Face config.json files, tensor-parallel sharding (vLLM's rule),
presets by Hugging Face name, and the workload edge for q_len, pages and the KV dtype."""

import json
from pathlib import Path

import pytest

from attnsim.errors import InputError
from attnsim.scenarios import models
from attnsim.simulator.workload import DecodeWorkload

DATA = Path(__file__).parent.parent / "data"
LLAMA_70B = str(DATA / "llama-3.1-70b-config.json")


def test_config_json_gives_heads_head_dim_layers_and_dtype():
    shape = models.from_name(LLAMA_70B)
    assert (shape.q_heads, shape.kv_heads, shape.head_dim, shape.layers, shape.dtype) == (64, 8, 128, 80, "bfloat16")
    preset = models.from_name("meta-llama/Llama-3.1-70B")
    assert (preset.q_heads, preset.kv_heads, preset.head_dim, preset.layers) == (64, 8, 128, 80)


def _config(tmp_path, **fields) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(fields))
    return str(path)


def test_config_variants(tmp_path):
    explicit = _config(tmp_path, num_attention_heads=32, num_key_value_heads=8, head_dim=128, hidden_size=5120,
                       num_hidden_layers=64, dtype="float16")  # head_dim wins over hidden / heads; newer `dtype`
    assert (models.from_name(explicit).head_dim, models.from_name(explicit).dtype) == (128, "float16")
    mha = _config(tmp_path, num_attention_heads=16, hidden_size=2048)  # no kv heads: MHA; no layers: unknown
    shape = models.from_name(mha)
    assert (shape.kv_heads, shape.head_dim, shape.layers, shape.dtype) == (16, 128, None, None)
    nested = _config(tmp_path, model_type="vlm", text_config=dict(num_attention_heads=8, num_key_value_heads=4,
                                                                   head_dim=256, num_hidden_layers=34))
    assert models.from_name(nested).head_dim == 256
    windowed = _config(tmp_path, num_attention_heads=8, num_key_value_heads=4, head_dim=128, sliding_window=4096,
                       num_hidden_layers=24)
    shape = models.from_name(windowed)  # every layer slides (Mistral v0.1); tests/scenarios/test_hf_layers.py
    assert (shape.window_tokens, shape.window_layers) == (4096, 24) and "sliding_window" in shape.note


@pytest.mark.parametrize("fields, field", [
    (dict(num_attention_heads=128, kv_lora_rank=512), "model.qk_rope_head_dim"),  # MLA: tests/scenarios/test_hf_mla.py
    (dict(num_attention_heads=128, q_lora_rank=1536, kv_lora_rank=None), "model.q_lora_rank"),
    (dict(hidden_size=4096), "model.num_attention_heads"),
    (dict(num_attention_heads=32, hidden_size=4100), "model.hidden_size"),
    (dict(num_attention_heads=32, num_key_value_heads=0, head_dim=128), "model.num_key_value_heads"),
    (dict(num_attention_heads=32, head_dim=128, torch_dtype="int8"), "model.torch_dtype"),
])
def test_configs_we_cannot_model_name_the_field(tmp_path, fields, field):
    with pytest.raises(InputError) as err:
        models.from_name(_config(tmp_path, **fields))
    assert err.value.field == field


def test_mla_config_file_and_unreadable_files(tmp_path):
    shape = models.from_name(str(DATA / "mla-config.json"))  # DeepSeek-V3's attention fields
    assert (shape.q_heads, shape.kv_heads, shape.head_dim, shape.kv_lora_rank, shape.layers) == (128, 1, 576, 512, 61)
    for text in ("{not json", "[1, 2]"):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(InputError) as err:
            models.from_name(str(tmp_path / "bad.json"))
        assert err.value.field == "model"
    with pytest.raises(InputError):
        models.from_name(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("tp, heads", [(1, (64, 8)), (2, (32, 4)), (8, (8, 1)), (16, (4, 1)), (64, (1, 1))])
def test_tensor_parallel_shards_heads_like_vllm(tp, heads):
    shape = models.from_name("llama-3.1-70b").sharded(tp)
    assert (shape.q_heads, shape.kv_heads, shape.tp) == (*heads, tp)
    assert shape.layers == 80


@pytest.mark.parametrize("name, tp", [("llama-3.1-70b", 3), ("llama-3.1-70b", 128), ("qwen2.5-7b", 8),
                                      ("qwen2.5-7b", 0)])
def test_tensor_parallel_refuses_what_does_not_divide(name, tp):
    """64 heads over 3 GPUs; 128 > 64 heads; Qwen2.5-7B: 28 heads / 8; tp 0."""
    with pytest.raises(InputError) as err:
        models.from_name(name).sharded(tp)
    assert err.value.field == "tp"


def test_kv_heads_neither_dividing_nor_multiple_are_refused():
    shape = models.ModelShape("odd", 48, 6, 128)  # tp 4: 48 / 4 fine, but 6 kv heads over 4 GPUs
    with pytest.raises(InputError, match="KV heads"):
        shape.sharded(4)


def test_workload_carries_layers_and_serving_fields():
    w = models.from_name("llama-3.1-70b").sharded(8).workload(16, 8192, "bf16", 4, 16, "fp8")
    assert (w.q_heads, w.kv_heads, w.layers, w.dtype, w.q_len, w.page_size, w.cache_dtype) == \
        (8, 1, 80, "bfloat16", 4, 16, "float8_e4m3fn")
    assert w.kv_bytes() == 2 * 16 * 8192 * 1 * 128 * 1  # fp8: one byte per element
    assert DecodeWorkload.build(1, 8, 1, 128, 100, kv_dtype="auto").kv_dtype == ""
    assert DecodeWorkload.build(1, 8, 1, 128, 100, dtype="bf16", kv_dtype="bfloat16").kv_dtype == ""


@pytest.mark.parametrize("kwargs, field", [
    (dict(q_len=17), "q_len"), (dict(q_len=0), "q_len"), (dict(context=3, q_len=4), "contexts"),
    (dict(page_size=24), "page_size"), (dict(page_size=8), "page_size"), (dict(page_size=512), "page_size"),
    (dict(page_size=True), "page_size"), (dict(kv_dtype="fp8_e5m2"), "kv_dtype"), (dict(kv_dtype="int8"), "kv_dtype"),
    (dict(layers=0), "layers"),
])
def test_serving_workloads_are_validated_at_the_edge(kwargs, field):
    args = dict(batch=2, q_heads=8, kv_heads=1, head_dim=128, context=1000) | kwargs
    with pytest.raises(InputError) as err:
        DecodeWorkload.build(**args)
    assert err.value.field == field
