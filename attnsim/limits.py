"""Size limits on every input, in one place: any accepted input is modelled in seconds and bounded memory.

Each limit says why it sits where it does. The budgets were measured (CPU seconds, peak memory) on
a 2-core, 23 GB machine: the largest accepted `predict` (5 workloads of 2^19 outputs, 6 strategies)
~4 s and ~610 MB; the largest timeline (2^16 CTAs) ~4 s; every command's start-up ~1.4 s. A report
at its limits (12 panels, 4,096 simulations) takes ~16 s, most of it figure layout (see
MAX_SCENARIO_PANELS). An input above a limit is refused with the limit in the message (InputError,
exit status 2) before any modelling. The README lists these under "Limits"."""

from __future__ import annotations

import math

from attnsim.errors import InputError

# --- one decode workload --------------------------------------------------------------------------
# Sequences in a batch (uniform or ragged): 16x vLLM's default max_num_seqs (256); a ragged batch
# lists one length per sequence, so this also bounds the lengths a --contexts list or a mix draws.
MAX_BATCH = 4096
# Query or KV heads of one layer: 8x the largest preset (Llama-3.1-405B: 128 query heads).
MAX_HEADS = 1024
# New query tokens per sequence: the decode model and kernels cover speculative-decoding verify,
# q_len x group rows packed into 64-row query blocks with KV read once per block (issue 13); beyond
# 16 the step is prefill, another problem (compute-bound, other tilings).
MAX_Q_LEN = 16
# Tokens of KV cache per sequence: 32x the longest context of any model preset (1M).
MAX_CONTEXT = 1 << 25
# K+V bytes one decode step reads: 16 TiB, ~10x the HBM of an 8-GPU B200 node (1.4 TB); sweeps model
# caches larger than one GPU holds, but beyond this a byte count is a typo.
MAX_KV_BYTES = 1 << 44
# Outputs (sequence, kv-head, 64-row query block) of one workload = FA2's CTAs: the plan arrays
# are per output, so this bounds a plan's memory (~70 MB per strategy) and time (~0.15 s).
MAX_OUTPUTS = 1 << 19
# Attention layers of a model (a config.json's num_hidden_layers, its layer_types list): 8x the
# deepest preset (Llama-3.1-405B: 126). Per-step totals multiply by it; a count in the thousands is
# a typo (10^12 layers gave a 6.5e13 µs step), and a layer_types list of that length is read item by item.
MAX_LAYERS = 1024
# A config.json is read whole before it is parsed: real ones are a few KB (a multimodal config with
# label maps ~100 KB). Nesting deeper than Python's JSON parser recurses is refused as such.
MAX_CONFIG_BYTES = 4 << 20

# --- one plan -------------------------------------------------------------------------------------
# CTAs of any plan (split count x outputs, balanced chunks, a grid): the same bound as the outputs.
MAX_PLAN_CTAS = 1 << 19
# A user split count: 8x FA2's own cap (128); it must also leave no split without a KV tile.
MAX_SPLITS = 1024
# Plans `auto:tune=K` times on the device before it runs the fastest (bench/tune.py): each costs a compile and
# a timing (~0.1-0.3 s); past 16 the model's ranking no longer narrows anything (the oracle study's best plan
# lies in the model's 6 fastest on 131 of 136 workloads).
MAX_TUNE_PLANS = 16
# A KV tile is staged in shared memory: 4096 tokens at the smallest head_dim (32, fp16) is 256 KB
# of K alone, more than any SM's 228 KB.
MAX_KV_TILE_TOKENS = 4096
# CTAs drawn in an SM timeline, over all its panels (a rectangle each, ~50 µs of CPU): ~4 s for 2^16.
MAX_TIMELINE_CTAS = 1 << 16
# A kernel's resources as `attnsim occupancy` takes them: CUDA's own ceilings are far below these
# (1024 threads, 255 registers, 228 KB); above them the numbers are typos, not kernels.
MAX_THREADS = 1 << 16
MAX_REGISTERS = 1 << 16
MAX_SMEM_BYTES = 1 << 30

# --- one command ----------------------------------------------------------------------------------
# Points of a scenario's sweep: its contexts (a per-octave grid too) and batch sizes. Each point is a
# row of figure panels' data; the report's own budget is MAX_MODELLED_PLANS. (--context on the command
# line is bounded by the work it asks for instead: MAX_MODELLED_SIMULATIONS and MAX_MODELLED_OUTPUTS.)
MAX_SWEEP_POINTS = 64
# Outputs modelled by one command, summed over workloads, strategies and GPUs (~4 s of modelling).
MAX_MODELLED_OUTPUTS = 1 << 24
# Simulations (plan + engine run) one command makes: workloads x layer kinds x plans (a planner search
# counts PLANS_PER_SEARCH). Each costs ~0.45 ms on a small workload (planning, the engine, a record),
# so 8,192 is ~3.5 s; with MAX_MODELLED_OUTPUTS this bounds `--context 1k:32M:1k`-style sweeps by the
# work they ask for, not by how many values they list (256 contexts x 3 strategies + bases: ~0.4 s).
MAX_MODELLED_SIMULATIONS = 8192
# Plans a planner search (`plan`, `--strategy auto`) simulates per workload: ~20-35 candidates
# (its bounds prune the rest); 24 on the largest workloads (~2 s at 2^19 outputs).
PLANS_PER_SEARCH = 24
# Simulations (workload x strategy x GPU) one report runs: ~1 ms each for small workloads.
MAX_MODELLED_PLANS = 4096
# A scenario: GPUs x shapes x batches = rows of panels in its speedup figure (shapes x batches in the
# what-if one); each row costs ~0.4 s of layout and drawing per figure, so 12 (the largest shipped
# scenario, gqa-sweep) makes a ~12 s report. GPUs it models or compares; ragged mixes; cases.
MAX_SCENARIO_PANELS = 12
MAX_SCENARIO_GPUS = 8
MAX_RAGGED_MIXES = 16
MAX_SCENARIO_CASES = 512
# Rows of a measurements CSV `validate`, `plot validation` and `report` predict (~0.6 ms each);
# twice the standard benchmark sweep (2,245 rows).
MAX_MEASUREMENT_ROWS = 5_000
# A measured kernel time: no launch completes in less than 0.5 µs (an empty kernel takes ~2 µs);
# a smaller time_us is a unit mistake (seconds or ms) or a corrupt row, and would make the error
# percentages meaningless. The upper bound is a decode step of 100 s.
MIN_MEASURED_US = 0.5
MAX_MEASURED_US = 1e8
# Timing budgets of `attnsim bench` / `calibrate` (ms of GPU time per point and strategy).
MAX_TIMER_MS = 60_000.0
# Bandwidth figures (GB/s) a profile or --peak-gbps may give: 100x the fastest GPU preset.
MAX_GBPS = 1e6
# Profile numbers bigger than this are corrupt (sizes, clocks, counts in a GPU description).
MAX_PROFILE_INT = 1 << 40


def check_max(value, limit, field: str, what: str = "") -> None:
    """InputError naming `field` and the limit when value > limit."""
    if value > limit:
        unit = f" {what}" if what else ""
        raise InputError(field, f"{value:,}{unit} is above the limit of {limit:,} (attnsim/limits.py)")


def check_finite(value, field: str, low: float | None = None, high: float | None = None) -> float:
    """A finite real number in [low, high] (either bound optional); bools are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(field, f"must be a finite number, got {value!r}")
    if low is not None and value < low:
        raise InputError(field, f"must be >= {low:g}, got {value!r}")
    if high is not None and value > high:
        raise InputError(field, f"{value:g} is above the limit of {high:g} (attnsim/limits.py)")
    return float(value)


def check_positive(value, field: str, high: float | None = None) -> float:
    """A finite number > 0 (and <= high)."""
    number = check_finite(value, field, high=high)
    if number <= 0:
        raise InputError(field, f"must be positive, got {value!r}")
    return number


def check_modelled(outputs_per_plan, plans: int, field: str) -> None:
    """The work budget of one command: sum of outputs over workloads, times plans per workload."""
    total = sum(outputs_per_plan) * plans
    if total > MAX_MODELLED_OUTPUTS:
        raise InputError(field, f"{total:,} outputs to model (workloads x strategies x GPUs) is above the "
                                f"limit of {MAX_MODELLED_OUTPUTS:,} (attnsim/limits.py); model fewer or "
                                "smaller workloads")


def check_simulations(count: int, field: str) -> None:
    """The number of plans one command simulates (MAX_MODELLED_SIMULATIONS)."""
    if count > MAX_MODELLED_SIMULATIONS:
        raise InputError(field, f"{count:,} simulations (workloads x strategies, a planner search counting "
                                f"{PLANS_PER_SEARCH}) is above the limit of {MAX_MODELLED_SIMULATIONS:,} "
                                "(attnsim/limits.py); model fewer contexts or strategies")


def check_timeline(results, field: str) -> None:
    """SimResults whose CTAs, over every panel, a timeline figure draws in seconds (MAX_TIMELINE_CTAS)."""
    ctas = sum(launch.grid for result in results for launch in result.schedule.launches)
    check_max(ctas, MAX_TIMELINE_CTAS, field, "CTAs to draw in a timeline")
