"""Issue 22: legitimate configs modelled as what they are, not as plain full attention — sliding
windows (all layers, alternating, patterned, switched off), Falcon's and GPT-BigCode's KV heads,
hybrids whose layers are not all attention (Jamba, Bamba, Nemotron-H, Qwen3-Next)."""

import json

import pytest

from attnsim.scenarios import models


def _shape(tmp_path, **fields) -> models.ModelShape:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(fields))
    return models.from_name(str(path))


LLAMA_LIKE = dict(hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, num_hidden_layers=32)


@pytest.mark.parametrize("fields, window, sliding, layers", [
    # Mistral-7B v0.1: every layer reads the last 4096 tokens
    (dict(model_type="mistral", sliding_window=4096), 4096, 32, 32),
    # Mistral-7B v0.2+: sliding_window null
    (dict(model_type="mistral", sliding_window=None), 0, 0, 32),
    # Gemma-2: even layers slide (transformers: (i + 1) % 2), 42 layers -> 21
    (dict(model_type="gemma2", sliding_window=4096, num_hidden_layers=42), 4096, 21, 42),
    # Gemma-3: every 6th layer is global; 34 layers -> 5 full, 29 sliding
    (dict(model_type="gemma3_text", sliding_window=1024, num_hidden_layers=34), 1024, 29, 34),
    # an explicit pattern wins over the model type's default
    (dict(model_type="gemma3_text", sliding_window=1024, sliding_window_pattern=2), 1024, 16, 32),
    # Qwen2.5: the window field is set but not used
    (dict(model_type="qwen2", sliding_window=131072, use_sliding_window=False, max_window_layers=28), 0, 0, 32),
    # Qwen2 with the window on: layers from max_window_layers slide
    (dict(model_type="qwen2", sliding_window=4096, use_sliding_window=True, max_window_layers=20), 4096, 12, 32),
    # gpt-oss: layer_types alternate sliding / full
    (dict(sliding_window=128, layer_types=["sliding_attention", "full_attention"] * 16), 128, 16, 32),
    # a window longer than any context attnsim models never clips
    (dict(sliding_window=1 << 30), 0, 0, 32),
])
def test_sliding_windows(tmp_path, fields, window, sliding, layers):
    shape = _shape(tmp_path, **{**LLAMA_LIKE, **fields})
    assert (shape.window_tokens, shape.window_layers, shape.layers) == (window, sliding, layers)


@pytest.mark.parametrize("fields, attention, decoder", [
    # Jamba: layer i attends when i % 8 == 4 -> 4 of 32 (its Mamba layers hold no KV cache)
    (dict(model_type="jamba", attn_layer_period=8, attn_layer_offset=4, mamba_d_state=16), 4, 32),
    # the same as an explicit list
    (dict(layers_block_type=["mamba"] * 4 + ["attention"] + ["mamba"] * 3 + ["attention"] * 24), 25, 32),
    # Bamba: the attention layers' indices
    (dict(model_type="bamba", attn_layer_indices=[9, 18, 27], mamba_d_state=128), 3, 32),
    # Nemotron-H: '*' marks attention
    (dict(hybrid_override_pattern="M-M-M*-M-M*-M-M-M*-M-M-M-M*-M-M-", num_hidden_layers=32), 4, 32),
    # Qwen3-Next: three linear-attention layers to one full one
    (dict(layer_types=["linear_attention"] * 3 + ["full_attention"]) | dict(num_hidden_layers=4), 1, 4),
])
def test_hybrids_count_their_attention_layers(tmp_path, fields, attention, decoder):
    shape = _shape(tmp_path, **{**LLAMA_LIKE, **fields})
    assert shape.layers == attention
    assert f"{attention} of {decoder} layers attend" in shape.note


def test_jamba_attention_layers_take_its_window(tmp_path):
    shape = _shape(tmp_path, **LLAMA_LIKE, attn_layer_period=8, attn_layer_offset=4, sliding_window=2048,
                   mamba_d_state=16)
    assert (shape.layers, shape.window_tokens, shape.window_layers) == (4, 2048, 4)


@pytest.mark.parametrize("fields, heads", [
    # Falcon-7B: multi-query, 71 heads of 64 (hidden 4544)
    (dict(model_type="falcon", hidden_size=4544, num_attention_heads=71, num_hidden_layers=32, multi_query=True,
          new_decoder_architecture=False), (71, 1, 64, 32)),
    # Falcon's multi_query defaults to true
    (dict(model_type="falcon", hidden_size=4544, num_attention_heads=71, num_hidden_layers=32), (71, 1, 64, 32)),
    # Falcon-40B: the new decoder architecture with 8 KV heads
    (dict(model_type="falcon", hidden_size=8192, num_attention_heads=128, num_kv_heads=8, num_hidden_layers=60,
          new_decoder_architecture=True), (128, 8, 64, 60)),
    # its custom-code RefinedWeb config: n_head / n_head_kv / n_layer
    (dict(model_type="RefinedWeb", hidden_size=8192, n_head=128, n_head_kv=8, n_layer=60), (128, 8, 64, 60)),
    # Falcon-RW-1B: multi_query false, no num_kv_heads -> MHA
    (dict(model_type="falcon", hidden_size=2048, num_attention_heads=32, num_hidden_layers=24, multi_query=False,
          alibi=True), (32, 32, 64, 24)),
    # GPT-BigCode (StarCoder): multi_query by default, n_embd / n_head / n_layer
    (dict(model_type="gpt_bigcode", n_embd=6144, n_head=48, n_layer=40), (48, 1, 128, 40)),
    # any other config: multi_query true without num_key_value_heads is one KV head
    (dict(hidden_size=4096, num_attention_heads=32, num_hidden_layers=32, multi_query=True), (32, 1, 128, 32)),
])
def test_falcon_and_multi_query_heads(tmp_path, fields, heads):
    shape = _shape(tmp_path, **fields)
    assert (shape.q_heads, shape.kv_heads, shape.head_dim, shape.layers) == heads


def test_a_float32_checkpoint_is_served_in_float16(tmp_path):
    shape = _shape(tmp_path, **LLAMA_LIKE, torch_dtype="float32")  # vLLM --dtype auto
    assert shape.dtype == "float16" and "served in float16" in shape.note
    assert _shape(tmp_path, **LLAMA_LIKE, dtype="torch.bfloat16").dtype == "bfloat16"


@pytest.mark.parametrize("name, preset", [("mistralai/Mistral-7B-v0.1", "mistral-7b-v0.1"),
                                          ("mistralai/Mistral-7B-Instruct-v0.1", "mistral-7b-v0.1"),
                                          ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b"),
                                          ("google/gemma-2-9b-it", "gemma-2-9b")])
def test_versioned_presets_keep_their_window(name, preset):
    assert models.canonical_name(name) == preset
    shape = models.from_name(name)
    assert (shape.window_tokens > 0) == (preset != "mistral-7b")


def test_tensor_parallel_keeps_the_window():
    shape = models.from_name("gemma-2-27b").sharded(4)
    assert (shape.kv_heads, shape.window_tokens, shape.window_layers, shape.layers) == (4, 4096, 23, 46)
