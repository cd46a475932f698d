"""Shared pieces of the simulator tests: hypothesis strategies for workloads and plan options, an
independent FA2 split heuristic, and plan checks that read only the Schedule's public tables."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import assume
from hypothesis import strategies as st

from attnsim import strategies
from attnsim.simulator.hardware import PRESETS, CostParams, GpuSpec
from attnsim.simulator.occupancy import resident_capacity
from plan_helpers import plan
from attnsim.planner.choose import make_plan
from attnsim.simulator.partition.common import PlanConfig, outputs
from attnsim.simulator.schedule import ROLE_COMPLETE, ROLE_HOST, ROLE_PEER, Schedule
from attnsim.simulator.workload import DecodeWorkload

GPUS = ("h100-sxm", "a100-80gb", "l40s")  # one preset per compute capability: 9.0, 8.0, 8.9
Q_BLOCK_ROWS = 64  # FA2's kBlockM: packed query rows (q_len x group) per CTA


# ---- hypothesis strategies ------------------------------------------------------------------

@st.composite
def head_shapes(draw) -> tuple[int, int]:
    """(q_heads, kv_heads): MHA, GQA or MQA; 128-head MQA packs 128 rows = two q-blocks."""
    kind = draw(st.sampled_from(["mha", "gqa", "mqa"]))
    if kind == "mha":
        h = draw(st.sampled_from([1, 2, 4, 8, 32]))
        return h, h
    if kind == "gqa":
        kv = draw(st.sampled_from([2, 4, 8]))
        return kv * draw(st.sampled_from([2, 4, 8])), kv
    return draw(st.sampled_from([4, 8, 32, 128])), 1


@st.composite
def workloads(draw, max_batch: int = 5, max_context: int = 9000, mla: bool | None = False) -> DecodeWorkload:
    """Uniform or ragged batches, any context (odd ones included), head_dim 64/128/256, q_len 1.
    mla True: MLA layers (one latent head, 512 + 64 or 64 + 16, 8-128 query heads: 1-2 q-blocks);
    None: either."""
    if mla is None:
        mla = draw(st.booleans())
    batch = draw(st.integers(1, max_batch))
    lengths = st.integers(1, max_context)
    if draw(st.booleans()):
        context = draw(lengths)
    else:
        context = draw(st.lists(lengths, min_size=batch, max_size=batch))
    if mla:
        rank, rope = draw(st.sampled_from([(512, 64), (64, 16)]))
        q_heads = draw(st.sampled_from([8, 16, 64, 128]))
        return DecodeWorkload.build(batch, q_heads, 1, rank + rope, context, dtype="bfloat16", kv_lora_rank=rank)
    q_heads, kv_heads = draw(head_shapes())
    head_dim = draw(st.sampled_from([64, 128, 256]))
    return DecodeWorkload.build(batch, q_heads, kv_heads, head_dim, context)


def gpu_specs():
    return st.sampled_from(GPUS).map(PRESETS.__getitem__)


@st.composite
def plan_configs(draw, strategy: str, workload: DecodeWorkload, gpu: GpuSpec) -> PlanConfig:
    """The strategy's defaults, or explicit options: FlashDecoding splits, a grid <= capacity (stream-K,
    hybrid; balanced's target grid), hybrid's DP outputs, balanced's fixed chunk (a multiple of the tile)."""
    config = PlanConfig(kv_tile_tokens=draw(st.sampled_from([None, None, 16, 32, 64])))
    resolved = make_plan(strategy, workload, gpu, config)  # the tile and resources the plan runs with
    tile = resolved.schedule.kv_tile_tokens
    if strategy == "flashdecoding" and draw(st.booleans()):
        config = dataclasses.replace(config, splits=draw(st.integers(1, 40)))
    if strategy == "flashmla" and draw(st.booleans()):  # parts x the (kv-head, q-block) pairs
        pairs = outputs(workload, tile).count // workload.batch
        config = dataclasses.replace(config, grid=pairs * draw(st.integers(1, 300)))
    if strategy in ("streamk", "hybrid", "balanced") and draw(st.booleans()):
        capacity = resolved.capacity
        config = dataclasses.replace(config, grid=draw(_grids(strategy, capacity, outputs(workload, tile).count)))
    if strategy == "hybrid" and draw(st.booleans()):  # any count: the plan clamps it to whole waves
        config = dataclasses.replace(config, dp_outputs=draw(st.integers(0, outputs(workload, tile).count + 3)))
    if strategy == "balanced" and draw(st.booleans()):
        config = dataclasses.replace(config, chunk_tokens=tile * draw(st.integers(1, 40)))
    return config


def _grids(strategy: str, capacity: int, n_outputs: int):
    """Any grid up to the capacity; hybrid and balanced often a small one (several waves of outputs,
    so DP work; a target that forces long outputs to be split)."""
    if strategy == "streamk":
        return st.integers(1, capacity)
    small = max(1, min(capacity, n_outputs // 2 if strategy == "hybrid" else 64))
    return st.one_of(st.integers(min(2, small), small), st.integers(1, capacity))


def plannable(strategy: str, workload: DecodeWorkload, gpu: GpuSpec) -> bool:
    """False where the strategy refuses the shape outright (a library's head-dim limit: cuDNN's 128;
    an MLA layer for a strategy without an MLA kernel, a K/V-head layer for an MLA-only plan) or its
    kernel's CTA fits no SM of the GPU (64-row MLA tiles on the L40S's 99 KB)."""
    from attnsim.plans.plan import options_for, plan_config

    s = strategies.get(strategy)
    if s.unsupported(workload) is not None:
        return False
    if s.planned:  # auto: some plan it searches must run (none of the MLA kernels fits an L40S at 64 rows)
        return any(plannable(name, workload, gpu) for name in strategies.candidates(workload))
    if s.kernel_for(workload) is None:
        return True
    config, _ = plan_config(s, workload, gpu, options_for(s, None))
    return resident_capacity(gpu, config.resources) > 0


def mla_draws(strategy: str) -> bool | None:
    """What `workloads(mla=...)` a strategy takes: MLA only, K/V heads only (no MLA kernel), or both."""
    s = strategies.get(strategy)
    return True if s.mla_only else (None if s.mla_kernel is not None else False)


@st.composite
def planned(draw, strategy: str):
    """(Schedule, PlanConfig, GpuSpec) of a random workload (MLA where the strategy takes it), GPU and
    plan options."""
    workload, gpu = draw(workloads(mla=mla_draws(strategy))), draw(gpu_specs())
    assume(plannable(strategy, workload, gpu))
    config = draw(plan_configs(strategy, workload, gpu))
    return plan(strategy, workload, gpu, config), config, gpu


# ---- references -----------------------------------------------------------------------------

def fa2_num_splits(bhm: int, num_sms: int, n_blocks: int, max_splits: int = 128) -> int:
    """flash_api.cpp's num_splits_heuristic written out line by line, with its float32 arithmetic:
    `float n_waves = float(bhm * s) / num_SMs; float eff = n_waves / ceil(n_waves);` and the
    comparison `eff >= 0.85 * max_efficiency` done in double (0.85 is a double literal)."""
    f32 = np.float32
    if f32(bhm) >= f32(0.8) * f32(num_sms):
        return 1
    max_splits = min(max_splits, num_sms, n_blocks)

    def ceildiv(a, b):
        return (a + b - 1) // b

    def is_split_eligible(s):
        return s == 1 or ceildiv(n_blocks, s) != ceildiv(n_blocks, s - 1)

    efficiency, max_efficiency = [], f32(0.0)
    for s in range(1, max_splits + 1):
        if not is_split_eligible(s):
            efficiency.append(f32(0.0))
            continue
        n_waves = f32(bhm * s) / f32(num_sms)
        eff = n_waves / f32(math.ceil(n_waves))
        max_efficiency = max(max_efficiency, eff)
        efficiency.append(eff)
    for s in range(1, max_splits + 1):
        if is_split_eligible(s) and float(efficiency[s - 1]) >= 0.85 * float(max_efficiency):
            return s
    return 1


def fa2_block_n(head_dim: int) -> int:
    """FA2's kBlockN of the split-KV kernel (DOMAIN.md §2)."""
    return 256 if head_dim <= 64 else (128 if head_dim <= 128 else 64)


def fa2_heuristic_for(workload: DecodeWorkload, gpu: GpuSpec, block_n: int | None = None) -> int:
    """FA2's arguments for a q_len = 1 decode: the q-head group moves into seqlen_q (GQA swap);
    block_n: the KV block (default FA2's own for the head dim; a plan passes its KV tile)."""
    m_blocks = -(-workload.group // Q_BLOCK_ROWS)
    bhm = workload.batch * workload.kv_heads * m_blocks
    n_blocks = -(-workload.max_context // (block_n or fa2_block_n(workload.head_dim)))
    return fa2_num_splits(bhm, 2 * gpu.sm_count, n_blocks)


def spec_with_cost(params: CostParams, base: str = "h100-sxm") -> GpuSpec:
    """A preset whose every kernel family (attention and combine launches) uses `params`."""
    families = ("fa2", "flashdecoding", "streamk", "flashdecoding-combine", "combine", "default")
    return dataclasses.replace(PRESETS[base], cost={f: params for f in families}, source="test")


# ---- plan checks ----------------------------------------------------------------------------

def expected_tiles(sched: Schedule) -> dict[tuple[int, int, int], int]:
    """(seq, kv_head, q_block) -> KV tiles, from the workload and the plan's rows per q-block (FA2's
    64 unless the plan notes fewer: cuDNN packs 16)."""
    w, tile = sched.workload, sched.kv_tile_tokens
    q_blocks = -(-(w.q_len * w.group) // sched.notes.get("q_block_rows", Q_BLOCK_ROWS))
    return {(b, h, qb): -(-w.contexts[b] // tile)
            for b in range(w.batch) for h in range(w.kv_heads) for qb in range(q_blocks)}


def segments_by_output(sched: Schedule) -> dict[tuple[int, int, int], list[int]]:
    """Output -> its segment rows in the attention launch's table."""
    segs = sched.attention.segments
    rows = defaultdict(list)
    for r in range(len(segs)):
        rows[(int(segs.seq[r]), int(segs.kv_head[r]), int(segs.q_block[r]))].append(r)
    return rows


def assert_tiles_covered_once(sched: Schedule) -> None:
    """Every (sequence, kv-head, q-block, KV tile) is in exactly one segment, and nothing else is."""
    segs = sched.attention.segments
    expected = expected_tiles(sched)
    seen = {key: np.zeros(n, np.int64) for key, n in expected.items()}
    for r in range(len(segs)):
        key = (int(segs.seq[r]), int(segs.kv_head[r]), int(segs.q_block[r]))
        assert key in seen, f"segment {r} names an output {key} the workload does not have"
        first, n = int(segs.first_tile[r]), int(segs.n_tiles[r])
        assert n >= 1 and first >= 0 and first + n <= expected[key], (key, first, n, expected[key])
        seen[key][first:first + n] += 1
    for key, counts in seen.items():
        assert (counts == 1).all(), f"output {key}: tiles covered {counts.tolist()} times"


def assert_common_invariants(sched: Schedule) -> None:
    """Coverage, CTA-sorted rows, and per-CTA sums that agree with the segment table."""
    attn = sched.attention
    segs = attn.segments
    assert_tiles_covered_once(sched)
    assert (np.diff(segs.cta) >= 0).all(), "segment rows are sorted by CTA"
    assert segs.cta.min(initial=0) >= 0 and segs.cta.max(initial=0) < attn.grid
    # Every tile read once per q-block, the short last tile counted by its tokens.
    q_blocks = len({key[2] for key in expected_tiles(sched)})
    assert segs.kv_bytes.sum() == sched.workload.kv_bytes() * q_blocks
    assert attn.cta_tiles.sum() == sum(expected_tiles(sched).values())
    assert (attn.cta_segments == np.bincount(segs.cta, minlength=attn.grid)).all()
    assert sched.total_bytes() >= sched.workload.kv_bytes()


def assert_host_reductions(sched: Schedule) -> None:
    """In-kernel merges (stream-K, hybrid): every output split across CTAs has exactly one host, which
    holds its first tile and waits only on lower program ids; its peers are exactly the other CTAs
    touching it; a CTA hosts at most one output and is a peer of at most one."""
    segs, red = sched.attention.segments, sched.reductions
    rows_of = segments_by_output(sched)
    row_of_output = {(int(red.seq[i]), int(red.kv_head[i]), int(red.q_block[i])): i for i in range(len(red))}
    straddling = {key for key, rows in rows_of.items() if len(rows) > 1}
    assert set(row_of_output) == straddling and len(row_of_output) == len(red)
    assert (red.host_cta >= 0).all()
    for key, rows in rows_of.items():
        ctas = [int(segs.cta[r]) for r in rows]
        assert len(set(ctas)) == len(ctas), "an output appears once per CTA"
        if len(rows) == 1:
            assert segs.role[rows[0]] == ROLE_COMPLETE
            continue
        hosts = [r for r in rows if segs.role[r] == ROLE_HOST]
        assert len(hosts) == 1, f"output {key} has {len(hosts)} hosts"
        assert all(segs.role[r] == ROLE_PEER for r in rows if r != hosts[0])
        host = int(segs.cta[hosts[0]])
        assert segs.first_tile[hosts[0]] == 0, "the host holds the output's first tile"
        i = row_of_output[key]
        assert red.host_cta[i] == host
        peers = sorted(red.peers_of(i).tolist())
        assert peers == sorted(c for c in ctas if c != host)
        assert all(p < host for p in peers), "a host only waits on lower program ids"
    for cta in range(sched.grid):
        roles = segs.role[segs.cta == cta]
        assert (roles == ROLE_HOST).sum() <= 1 and (roles == ROLE_PEER).sum() <= 1


def assert_peers_publish_after_streaming(sched: Schedule) -> None:
    """peer_done_bytes = KV bytes the peer CTA has streamed up to and including its partial."""
    segs, red = sched.attention.segments, sched.reductions
    for i in range(len(red)):
        key = (red.seq[i], red.kv_head[i], red.q_block[i])
        for k in range(red.peer_offsets[i], red.peer_offsets[i + 1]):
            rows = np.flatnonzero(segs.cta == red.peer_cta[k])
            mine = [r for r in rows if (segs.seq[r], segs.kv_head[r], segs.q_block[r]) == key]
            assert len(mine) == 1
            upto = rows[rows <= mine[0]]
            assert red.peer_done_bytes[k] == pytest.approx(segs.kv_bytes[upto].sum())
