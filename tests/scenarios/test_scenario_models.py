"""Model presets: every one is a valid decode workload; names from Hugging Face resolve."""

import pytest

from attnsim.errors import InputError
from attnsim.scenarios import models

REQUIRED = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b",
            "mistral-7b", "mixtral-8x7b", "qwen2.5-7b", "qwen2.5-72b", "gemma-2-9b", "gemma-2-27b", "phi-3-mini"]


def test_the_issue_s_models_are_all_presets():
    assert set(REQUIRED) <= set(models.MODELS)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_preset_builds_a_valid_workload(name):
    shape = models.from_name(name)
    workload = shape.workload(batch=2, context=[1000, 5000], dtype="bfloat16")
    assert (workload.q_heads, workload.kv_heads, workload.head_dim) == (shape.q_heads, shape.kv_heads, shape.head_dim)
    assert workload.contexts == (1000, 5000)
    assert workload.group == shape.group >= 1
    # one token of one layer: K and V, kv_heads x head_dim each, 2 bytes per element
    assert workload.kv_bytes() == 6000 * shape.kv_bytes_per_token(2)
    assert shape.layers and shape.layers > 0


@pytest.mark.parametrize("alias, name", [
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("Meta-Llama-3.1-70B", "llama-3.1-70b"),
    ("llama3.1-8b", "llama-3.1-8b"),
    ("meta-llama/Llama-2-7b-chat-hf", "llama-2-7b"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"),
    ("Qwen/Qwen2.5-72B-Instruct", "qwen2.5-72b"),
    ("google/gemma-2-9b-it", "gemma-2-9b"),
    ("microsoft/Phi-3-mini-4k-instruct", "phi-3-mini"),
])
def test_hugging_face_names_resolve(alias, name):
    assert models.from_name(alias).name == name


def test_unknown_model_names_the_field_and_lists_the_presets():
    with pytest.raises(InputError) as info:
        models.from_name("gpt-5")
    assert info.value.field == "model"
    assert "llama-3.1-8b" in info.value.message
