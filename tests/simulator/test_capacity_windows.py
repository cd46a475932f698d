"""Issue 22: what a model's step reads and holds. Sliding-window layers read min(context, window)
tokens (per-layer time and per-step totals), hybrids count their attention layers, and the KV cache
a GPU holds is checked against its memory (DOMAIN.md section 8)."""

import dataclasses

import pytest

from attnsim.errors import InputError
from attnsim.scenarios import models
from attnsim.simulator import capacity, hardware
from attnsim.predict import predict_one, predict_records
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DecodeWorkload

H200 = resolve_gpu("h200")
GIB = 1 << 30


def _records(model: str, context: int, batch: int = 1, tp: int = 1, names=("streamk",), **kw) -> dict:
    w = models.from_name(model).sharded(tp).workload(batch, context, **kw)
    return {r["strategy"]: r for r in predict_records(w, H200, names)}


def test_a_window_every_layer_slides_clips_what_each_layer_reads():
    short, long = _records("mistral-7b-v0.1", 4096)["streamk"], _records("mistral-7b-v0.1", 32768)["streamk"]
    assert long["time_us"] == short["time_us"] and long["contexts"] == [32768]  # the row keeps the sequence's length
    assert long["token_attention_us"] == pytest.approx(32 * long["time_us"], abs=0.1)
    full = _records("mistral-7b", 32768)["streamk"]  # v0.2+: every layer reads all 32k
    assert full["time_us"] > 2 * long["time_us"]  # 8x the bytes; fixed costs weigh at 4k
    assert long["kv_cache_gib"] == short["kv_cache_gib"] == pytest.approx(full["kv_cache_gib"] / 8)


def test_alternating_windows_sum_both_kinds_of_layer():
    w = models.from_name("gemma-2-9b").workload(1, 65536)
    (full, n_full), (windowed, n_windowed) = w.layer_kinds()
    assert (n_full, n_windowed, windowed.contexts, full.contexts) == (21, 21, (4096,), (65536,))
    record = predict_records(w, H200, ["streamk"])[0]
    t_full, t_window = predict_one("streamk", full, H200).total_us, predict_one("streamk", windowed, H200).total_us
    assert record["time_us"] == pytest.approx(t_full, abs=1e-3)  # the per-layer figure: a full layer
    assert record["token_attention_us"] == pytest.approx(21 * t_full + 21 * t_window, abs=0.1)
    assert t_window < 0.3 * t_full  # 1/16 of the bytes; fixed costs (launch, merges) keep it above 1/16
    # KV: half the layers hold 64k tokens, half 4k: (64k + 4k) / (2 x 64k) of full attention
    kv_full = 42 * 2 * 8 * 256 * 2 * 65536
    assert capacity.kv_cache_bytes(w) == kv_full * (65536 + 4096) // (2 * 65536)


def test_a_window_no_sequence_exceeds_is_one_kind():
    w = models.from_name("gemma-2-9b").workload(2, [1000, 3000])
    assert w.layer_kinds() == ((dataclasses.replace(w, window_tokens=0, window_layers=0), 42),)


def test_hybrid_totals_count_attention_layers_only(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "jamba", "hidden_size": 4096, "num_attention_heads": 32, '
                    '"num_key_value_heads": 8, "num_hidden_layers": 32, "attn_layer_period": 8, '
                    '"attn_layer_offset": 4, "mamba_d_state": 16}')
    record = _records(str(path), 262144)["streamk"]
    assert record["layers"] == 4 and record["token_attention_us"] == pytest.approx(4 * record["time_us"], abs=0.1)
    assert record["kv_cache_gib"] == pytest.approx(4 * 2 * 8 * 128 * 2 * 262144 / GIB)  # not 32 layers' worth


@pytest.mark.parametrize("batch, context, fits", [(256, 1 << 20, False), (32, 131072, False), (16, 32768, True)])
def test_llama_70b_tp8_on_the_h200(batch, context, fits):
    record = _records("llama-3.1-70b", context, batch, tp=8)["streamk"]
    expected = 80 * 1 * 2 * 128 * 2 * batch * context  # layers x kv-heads per GPU x K,V x d x bf16 x tokens
    assert record["kv_cache_gib"] == pytest.approx(expected / GIB, abs=1e-3)
    assert record["gpu_memory_gib"] == pytest.approx(143_771 / 1024, abs=0.1)
    assert (record["capacity_warning"] is None) == fits
    if not fits:
        assert "h200" in record["capacity_warning"] and "80 layers" in record["capacity_warning"]


def test_fp8_and_pages_change_what_is_held():
    bf16 = DecodeWorkload.build(2, 8, 1, 128, 17, page_size=0, layers=10)
    paged = DecodeWorkload.build(2, 8, 1, 128, 17, page_size=16, layers=10)
    fp8 = DecodeWorkload.build(2, 8, 1, 128, 17, kv_dtype="fp8", layers=10)
    assert capacity.kv_cache_bytes(bf16) == 10 * 2 * 128 * 2 * 34
    assert capacity.kv_cache_bytes(paged) == 10 * 2 * 128 * 2 * 64  # 17 tokens hold 2 pages of 16
    assert capacity.kv_cache_bytes(fp8) == capacity.kv_cache_bytes(bf16) // 2


def test_no_model_is_one_layer_and_no_memory_is_no_check():
    w = DecodeWorkload.build(64, 64, 64, 128, 1 << 20)  # 2 TiB in one layer
    fields = capacity.capacity_fields(w, H200)
    assert "1 layer, no model given" in fields["capacity_warning"]
    unknown = dataclasses.replace(H200, memory_bytes=0)
    assert capacity.capacity_fields(w, unknown) | {"kv_cache_gib": 0} == {
        "kv_cache_gib": 0, "gpu_memory_gib": None, "kv_memory_fraction": None, "capacity_warning": None}


@pytest.mark.parametrize("gpu, mib", [("h100", 81_559), ("h200", 143_771), ("a100", 81_920), ("l40s", 46_068),
                                      ("b200", 183_359)])
def test_every_preset_and_profile_knows_its_memory(gpu, mib):
    """Presets, the shipped calibrated profiles (written before the field) and transfers alike."""
    assert hardware.from_name(gpu).memory_bytes == resolve_gpu(gpu).memory_bytes == mib << 20


def test_window_fields_are_checked_at_the_workload_edge():
    for kw, field in [(dict(window_tokens=4096, window_layers=0), "window_layers"),
                      (dict(window_tokens=4096, window_layers=33), "window_layers"),
                      (dict(window_tokens=0, window_layers=3), "window_tokens"),
                      (dict(window_tokens=2, window_layers=3, q_len=4), "window_tokens")]:
        with pytest.raises(InputError) as err:
            DecodeWorkload.build(1, 8, 1, 128, 100, layers=32, **kw)
        assert err.value.field == field
