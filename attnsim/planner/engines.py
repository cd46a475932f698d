"""What to set in a serving engine: each engine's own decode-split rule and the values of its knob,
replayed on our kernels' plans (planner/heuristics.py), predicted by the model and set against the
planner's choice.

    advice = engine_advice("sglang", result)   # result: search()'s PlanResult for the workload
    advice.settings     # each: what to set (the engine's words), the plan our kernels run for it, µs
    advice.default      # the engine as it ships; advice.recommended: what to set (the default unless a
                        # setting is predicted faster beyond the tie band)

The times are our kernels running each engine's split decision: what that decision costs, not what
the engine's own kernels take. Knob names from each engine's source (read 2026-12):
- vLLM (vllm/config/attention.py, v1/attention/backends/flash_attn.py, platforms/cuda.py):
  --attention-backend (FLASH_ATTN first below compute capability 10, FLASHINFER first on 10.x).
  FLASH_ATTN passes FA3's `num_splits` = AttentionConfig.flash_attn_max_num_splits_for_cuda_graph
  (default 32; --attention-config) when the decode batch runs as a full CUDA graph, else 0 (FA3's
  heuristic); VLLM_BATCH_INVARIANT=1 makes it 1. FLASHINFER sets FlashInfer's split only in
  batch-invariant mode: no knob.
- SGLang, Triton backend (srt/server_args.py, layers/attention/triton_backend.py):
  --triton-attention-num-kv-splits (default 8) caps its per-sequence split rule;
  --enable-deterministic-inference cuts every sequence into ceil(len / T) splits, T =
  SGLANG_TRITON_DECODE_SPLIT_TILE_SIZE (default 256).
- FlashInfer (flashinfer/decode.py, BatchDecodeWithPagedKVCacheWrapper.plan): fixed_split_size (in
  pages; tensor-core decode only) and disable_split_kv.
- FA3 (hopper/flash_attn_interface.py, flash_attn_with_kvcache): num_splits (0: its heuristic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.planner import candidates as cand, heuristics as rules
from attnsim.planner.search import Evaluated, Evaluator, PlanResult
from attnsim.planner.tieband import tie_band
from attnsim.simulator.partition.common import PlanConfig

POWERS = (1, 2, 4, 8, 16, 32, 64, 128)
SGLANG_SPLITS = (1, 2, 4, 8, 16, 32, 64)  # --triton-attention-num-kv-splits values tried
SGLANG_DETERMINISTIC_TILE = 256  # SGLANG_TRITON_DECODE_SPLIT_TILE_SIZE default
VLLM_CUDA_GRAPH_SPLITS = 32  # AttentionConfig.flash_attn_max_num_splits_for_cuda_graph default
FLASHINFER_MAX_CHUNKS = 2  # fixed split sizes tried: chunks of at most 2 x the resident grid (as the search)
PLANS_PER_ENGINE = 16  # the most settings one engine replays (FlashInfer: 2 + up to 14 fixed sizes)


@dataclass(frozen=True)
class Setting:
    """One way to run the engine: what to set, and the plan our kernels replay its decision with."""

    text: str
    plan: Evaluated
    default: bool = False
    invariant: bool = False  # an engine-wide determinism mode: shown for its cost, never recommended
    knobs: tuple[tuple[str, object], ...] = ()  # (flag, argument or environment variable, value) as set
    group: str = ""  # settings of one knob's sweep: one row per plan within a group


@dataclass(frozen=True)
class Advice:
    engine: str
    label: str
    settings: tuple[Setting, ...]
    best_plan: Evaluated  # the planner's choice on our kernels (what `auto` runs)
    tie_band_pct: float  # of the default setting's plans
    notes: tuple[str, ...]

    @property
    def default(self) -> Setting:
        return next(s for s in self.settings if s.default)

    @property
    def fastest(self) -> Setting:
        return min((s for s in self.settings if not s.invariant), key=lambda s: (s.plan.time_us, not s.default))

    @property
    def keep_default(self) -> bool:
        """No setting is predicted faster than the default beyond the tie band."""
        return self.default.plan.time_us <= self.fastest.plan.time_us * (1.0 + self.tie_band_pct / 100.0)

    @property
    def recommended(self) -> Setting:
        return self.default if self.keep_default else self.fastest


@dataclass(frozen=True)
class Engine:
    label: str
    settings: Callable[[Evaluator], list[Setting]]
    notes: Callable[[Evaluator], tuple[str, ...]]


def entry_of(rule: str) -> str:
    """The registry entry a production rule (its `rule` key in HEURISTICS) runs on."""
    return next(h.strategy for h in strategies.HEURISTICS if h.rule == rule)


def replay(ev: Evaluator, rule: str, options: dict) -> Evaluated:
    """The plan of `rule`'s entry with `options`, simulated (and named) as the planner's candidates are."""
    return ev.run(ev.context(entry_of(rule)).candidate(0, 0.0, **options))


def distinct_settings(settings: list[Setting]) -> list[Setting]:
    """One setting per plan within each knob's sweep (the first: the default, then the smallest values);
    defaults and determinism rows always kept."""
    seen, kept = {(s.group, s.plan.spec) for s in settings if s.default}, []
    for s in settings:
        key = (s.group, s.plan.spec)
        if s.default or s.invariant or key not in seen:
            seen.add(key)
            kept.append(s)
    return kept


def fixed_chunk(ctx, tokens: int) -> dict:
    """A fixed split of `tokens` rounded up to whole KV tiles, at most the longest sequence."""
    return {"chunk_tokens": min(rules.round_up(tokens, ctx.tile), int(ctx.tiles.max()) * ctx.tile)}


def sglang_settings(ev: Evaluator) -> list[Setting]:
    ctx = ev.context(entry_of("sglang_chunk"))
    flag = "--triton-attention-num-kv-splits"
    rows = [Setting(f"{flag} {n}", replay(ev, "sglang_chunk", rules.sglang_chunk(ctx, n)),
                    n == rules.SGLANG_MAX_SPLITS, knobs=((flag, n),))
            for n in sorted(SGLANG_SPLITS, key=lambda n: n != rules.SGLANG_MAX_SPLITS)]
    tile = SGLANG_DETERMINISTIC_TILE
    rows.append(Setting(f"--enable-deterministic-inference (SGLANG_TRITON_DECODE_SPLIT_TILE_SIZE={tile})",
                        replay(ev, "sglang_chunk", fixed_chunk(ctx, tile)), invariant=True,
                        knobs=(("--enable-deterministic-inference", True), ("SGLANG_TRITON_DECODE_SPLIT_TILE_SIZE", tile))))
    return distinct_settings(rows)


def flashinfer_settings(ev: Evaluator) -> list[Setting]:
    ctx = ev.context(entry_of("flashinfer_chunk"))
    page, longest = ev.workload.page_size or 1, int(ctx.tiles.max()) * ctx.tile
    rows = [Setting("plan(...) (its scheduler's chunk)", replay(ev, "flashinfer_chunk", rules.flashinfer_chunk(ctx)),
                    True),
            Setting("plan(..., disable_split_kv=True)", replay(ev, "flashinfer_chunk", fixed_chunk(ctx, longest)),
                    knobs=(("disable_split_kv", True),))]
    chunks = [max(ctx.tile, page) << k for k in range(longest.bit_length())]
    rows += [Setting(f"plan(..., fixed_split_size={c // page}) ({c} tokens: pages of {page})",
                     replay(ev, "flashinfer_chunk", fixed_chunk(ctx, c)), knobs=(("fixed_split_size", c // page),))
             for c in chunks if c < longest and cand.chunk_counts(ctx, c).sum() <= FLASHINFER_MAX_CHUNKS * ctx.capacity]
    return distinct_settings(rows)


def fa3_settings(ev: Evaluator) -> list[Setting]:
    ctx = ev.context(entry_of("fa3_chunk"))
    rows = [Setting("num_splits=0 (FA3's heuristic)", replay(ev, "fa3_chunk", rules.fa3_chunk(ctx)), True,
                    knobs=(("num_splits", 0),))]
    rows += [Setting(f"num_splits={n}", replay(ev, "fa3_chunk", rules.fa3_chunk(ctx, n)), knobs=(("num_splits", n),))
             for n in POWERS if n <= int(ctx.tiles.max())]
    return distinct_settings(rows)


def vllm_flash_attn(ev: Evaluator, flashinfer_first: bool) -> list[Setting]:
    """FLASH_ATTN on Hopper: FA3, its split cap under full CUDA graphs."""
    ctx, cap, key = ev.context(entry_of("fa3_chunk")), VLLM_CUDA_GRAPH_SPLITS, "flash_attn_max_num_splits_for_cuda_graph"
    backend = ("--attention-backend", "FLASH_ATTN")
    rows = [Setting(f"--attention-backend FLASH_ATTN, decode in full CUDA graphs (FA3 num_splits = {key} = {cap})",
                    replay(ev, "fa3_chunk", rules.fa3_chunk(ctx, cap)), not flashinfer_first, knobs=(backend,),
                    group="FLASH_ATTN"),
            Setting("--attention-backend FLASH_ATTN, eager/piecewise decode (FA3's heuristic)",
                    replay(ev, "fa3_chunk", rules.fa3_chunk(ctx)), knobs=(backend,), group="FLASH_ATTN")]
    rows += [Setting(f"--attention-backend FLASH_ATTN --attention-config '{{\"{key}\": {n}}}'",
                     replay(ev, "fa3_chunk", rules.fa3_chunk(ctx, n)), knobs=(backend, (f"--attention-config.{key}", n)),
                     group="FLASH_ATTN")
             for n in POWERS if n != cap and n <= int(ctx.tiles.max())]
    rows.append(Setting("VLLM_BATCH_INVARIANT=1 (FLASH_ATTN: num_splits = 1)", replay(ev, "fa3_chunk",
                                                                                     rules.fa3_chunk(ctx, 1)),
                        invariant=True, knobs=(backend, ("VLLM_BATCH_INVARIANT", 1))))
    return rows


def vllm_settings(ev: Evaluator) -> list[Setting]:
    """FLASH_ATTN (FA3 on Hopper, compute capability 9.x; FA2's rule elsewhere) and FLASHINFER; the default
    by compute capability."""
    flashinfer_first = ev.gpu.compute_capability[0] == 10
    if ev.gpu.compute_capability[0] == 9:
        rows = vllm_flash_attn(ev, flashinfer_first)
    else:
        rows = [Setting("--attention-backend FLASH_ATTN (FA2's heuristic)",
                        replay(ev, "fa2_splits", rules.fa2_splits(ev.context(entry_of("fa2_splits")))),
                        not flashinfer_first, knobs=(("--attention-backend", "FLASH_ATTN"),), group="FLASH_ATTN")]
    flashinfer = ev.context(entry_of("flashinfer_chunk"))
    rows.append(Setting("--attention-backend FLASHINFER (FlashInfer's scheduler chooses the split)",
                        replay(ev, "flashinfer_chunk", rules.flashinfer_chunk(flashinfer)), flashinfer_first,
                        knobs=(("--attention-backend", "FLASHINFER"),), group="FLASHINFER"))
    return distinct_settings(rows)


def common_notes(ev: Evaluator) -> tuple[str, ...]:
    return ("times: our kernels running the engine's split decision (the model's prediction per layer), not the "
            "engine's own kernels",)


# Head dims vLLM's FlashInfer backend listed (v1 in 2025, get_supported_head_sizes; later versions dropped the list):
# a padded one (96, 160-224) runs on our kernels and FA3, but may not on a given FlashInfer build
FLASHINFER_HEAD_DIMS = (64, 128, 256)


def flashinfer_head_dim_notes(ev: Evaluator) -> tuple[str, ...]:
    d = ev.workload.head_dim
    if ev.workload.is_mla or d in FLASHINFER_HEAD_DIMS:
        return ()
    return (f"head dim {d}: vLLM's FlashInfer backend listed head sizes {', '.join(map(str, FLASHINFER_HEAD_DIMS))} "
            f"in 2025; check that your vLLM / FlashInfer build runs d {d} before choosing it",)


ENGINES = {
    "vllm": Engine("vLLM: the attention backend and FA3's split cap", vllm_settings, lambda ev: common_notes(ev) +
                   flashinfer_head_dim_notes(ev) + (
        "FLASHINFER: vLLM sets FlashInfer's split only under VLLM_BATCH_INVARIANT (no knob otherwise)",
        "the FLASH_ATTN split cap is modelled for FA3 (Hopper); elsewhere FLASH_ATTN is FA2's rule",
        "TRITON_ATTN (its 2D/3D kernel switch) is not modelled")),
    "sglang": Engine("SGLang, Triton attention backend (--attention-backend triton)", sglang_settings,
                     lambda ev: common_notes(ev) + (
                         "--attention-backend fa3 / flashinfer run those libraries' rules: see --engine fa3 / flashinfer",
                         "SGLANG_TRITON_DECODE_ATTN_STATIC_KV_SPLITS=true always uses the cap (not modelled)")),
    "flashinfer": Engine("FlashInfer batch decode (BatchDecodeWithPagedKVCacheWrapper.plan)", flashinfer_settings,
                         lambda ev: common_notes(ev) + flashinfer_head_dim_notes(ev) + (
                             "fixed_split_size is in pages and needs the tensor-core decode (use_tensor_cores=True)",
                             *(("a contiguous cache: sizes in pages of 1 token; --page-size gives the engine's",)
                               if not ev.workload.page_size else ()),
                             f"fixed split sizes tried: powers of two with at most {FLASHINFER_MAX_CHUNKS} x the "
                             "resident grid of chunks")),
    "fa3": Engine("FlashAttention-3 (flash_attn_with_kvcache)", fa3_settings, lambda ev: common_notes(ev) + (
        "num_splits > 0 caps the per-sequence splits of a batch <= 992; values giving the default's plan are not listed",
        "pack_gqa (FA3 decides) is not modelled: our kernels always pack the q-head group")),
}


def check_engine(name: str) -> str:
    key = str(name).strip().lower()
    if key not in ENGINES:
        raise InputError("engine", f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
    return key


def parse_engines(text: str) -> tuple[str, ...]:
    """'sglang,vllm' -> ('sglang', 'vllm'); an empty item or an unknown engine is an InputError."""
    parts = [p.strip() for p in str(text).split(",")]
    if not all(parts):
        raise InputError("engine", f"{text!r}: expected a comma-separated list of {', '.join(ENGINES)}")
    return tuple(dict.fromkeys(check_engine(p) for p in parts))


def engine_advice(name: str, result: PlanResult, options: PlanConfig | None = None) -> Advice:
    """The settings of engine `name` for the workload `result` planned (with `options`: the kernel
    shape; pins do not apply to an engine's rule), against its choice."""
    engine = ENGINES[check_engine(name)]
    ev = Evaluator(result.workload, result.gpu, cand.without_pins(options or PlanConfig()))
    settings = tuple(engine.settings(ev))
    default = next(s for s in settings if s.default)
    band, _ = tie_band(result.gpu, default.plan.family, result.workload)
    return Advice(check_engine(name), engine.label, settings, result.chosen, band, engine.notes(ev))
