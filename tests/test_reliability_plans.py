"""Pinned plan options and plan specs (issue 22): every option is checked at the edge against its
strategy's type and, where it depends on the workload, against the plan itself — before any work;
valid specs are taken."""

from __future__ import annotations

import pytest

from cli_helpers import run_cli
from reliability_helpers import assert_refused

H200 = "--gpu h200 --q-heads 32 --kv-heads 8"

REFUSED = [
    ("plan --strategy hybrid", "strategy: hybrid has no plan"),  # fewer outputs than a DP wave (was max() of [])
    (f"plan {H200} --dp-outputs 132", "dp_outputs"),
    (f"plan {H200} --grid 132 --batch-invariant", "batch_invariant"),
    (f"plan {H200} --chunk 1024 --batch-invariant", "batch_invariant"),
    (f"plan {H200} --kv-tile 24", "kv-tile: kv_tile_tokens must be a power of two"),
    (f"plan {H200} --kv-tile 8", "kv-tile"),
    (f"plan {H200} --dp-outputs 4 --chunk 1024", "strategy: no plan of ours takes"),
    (f"predict {H200} --kv-tile 48", "kv-tile"),
    ("bench --estimate --quick --strategies streamk:grid=1,grid=2", "strategies: .*grid given twice"),
    ("bench --estimate --quick --strategies flashdecoding:num_warps=3", "strategies: num_warps must be a power of two"),
    ("bench --estimate --quick --strategies balanced:chunk_tokens=900", "strategies: .*multiple of the KV tile"),
    ("bench --estimate --quick --strategies streamk:grid=100000", "strategies: .*resident capacity"),
    ("bench --estimate --quick --strategies fa2:grid=4", "strategies: fa2 takes no grid"),
    ("bench --estimate --quick --strategies streamk:grid=", "strategies: .*expected name:option=integer"),
    ("bench --estimate --quick --strategies streamk:grid=-3", "strategies: .*expected name:option=integer"),
    ("bench --estimate --quick --strategies flashdecoding:splits=0", "strategies: splits must be an integer >= 1"),
    ("bench --estimate --quick --strategies auto:batch_invariant=2", "strategies: .*batch_invariant"),
    ("bench --estimate --quick --strategies torch-cudnn:grid=8", "strategies: torch-cudnn takes no grid"),
    ("bench --estimate --quick --strategies fa2,,streamk", "strategies"),
    ("bench --estimate --quick --strategies hybrid:dp_outputs=1,grid=", "strategies"),
]


@pytest.mark.parametrize("command, field", REFUSED)
def test_pinned_options_are_refused_at_the_edge(command, field, tmp_path, capsys):
    assert_refused(command, field, tmp_path, capsys)


@pytest.mark.parametrize("strategies", ["hybrid:grid=49,dp_outputs=0", "auto:batch_invariant=0",
                                        "fa2,hybrid:grid=132,dp_outputs=0,streamk:grid=66",
                                        "flashdecoding:splits=4;streamk"])
def test_valid_specs_are_taken(strategies, capsys):
    code, out, err = run_cli(["bench", "--estimate", "--quick", "--strategies", strategies], capsys)
    assert code == 0, err
    assert "timed runs" in out
