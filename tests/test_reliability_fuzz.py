"""Issue 14: random valid workloads through `attnsim predict --format json` on every GPU profile —
always exit 0, JSON a strict parser accepts (no NaN or infinity), finite positive times, and a
bandwidth fraction no plan can exceed (<= 1.2: fitted HBM scales reach 1.15)."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import json_items, run_cli

from attnsim import strategies
from attnsim.simulator.workload import HEAD_DIMS

GPUS = ("h100", "h200", "a100", "l40s", "b200")


@st.composite
def predict_args(draw) -> list[str]:
    """A valid `predict` command: heads, head_dim, dtype, GPU, profile, strategies, uniform or ragged."""
    kv_heads = draw(st.sampled_from([1, 2, 4, 8, 16, 32]))
    group = draw(st.sampled_from([1, 2, 4, 8]))
    head_dim = draw(st.sampled_from(HEAD_DIMS))
    takes = [n for n in strategies.predictable() if strategies.get(n).takes(head_dim)  # cuDNN: d <= 128
             and not strategies.get(n).mla_only]
    args = ["--gpu", draw(st.sampled_from(GPUS)), "--q-heads", str(kv_heads * group), "--kv-heads", str(kv_heads),
            "--head-dim", str(head_dim), "--dtype", draw(st.sampled_from(["float16", "bfloat16"])),
            "--strategy", ",".join(draw(st.lists(st.sampled_from(takes), min_size=1, max_size=3, unique=True)))]
    if draw(st.booleans()):
        args += ["--calibration", "none"]
    lengths = st.integers(1, 1 << 21)
    if draw(st.booleans()):
        contexts = draw(st.lists(lengths, min_size=1, max_size=4))
        return args + ["--batch", str(draw(st.integers(1, 64))), "--context", ",".join(map(str, contexts))]
    return args + ["--contexts", ",".join(map(str, draw(st.lists(lengths, min_size=1, max_size=24))))]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=predict_args())
def test_random_valid_workloads_predict_finite_json(args, capsys):
    code, out, err = run_cli(["predict", *args, "--format", "json"], capsys)
    # stderr carries only the one-line notes a valid input may earn (e.g. a KV cache above the GPU's memory)
    assert code == 0 and all(line.startswith(("attnsim: warning: ", "attnsim: note: "))
                             for line in err.splitlines()), err
    records = json_items(out)
    assert records
    for record in records:
        assert math.isfinite(record["time_us"]) and record["time_us"] > 0, record
        for key in ("floor_us", "achieved_gbps", "bw_fraction"):  # rounded: 0.0 for a few tokens
            assert math.isfinite(record[key]) and record[key] >= 0, (key, record)
        assert record["bw_fraction"] <= 1.2, record
        assert record["time_us"] >= record["floor_us"] / 1.2, record
