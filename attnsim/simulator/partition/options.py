"""The options a user (or a recorded row) may set on a plan: one frozen type per kind of strategy.

A strategy's registry entry names its type (`Strategy.options_type`), so a strategy cannot be handed a
field it does not declare: building a type with a field it lacks is an InputError naming that field
(vidur's one config class per scheduler variant). Every value is checked against OPTION_RANGES when
the options are built. `None` means "the strategy's default"; a concrete plan (attnsim.plans) fills
the fields that decide its work (a FlashDecoding plan's splits, a persistent plan's grid), so its
options name exactly the plan that runs.

PlanConfig (common.py) is what the partitioners read once the resolver has filled the kernel shape
and the compiled resources in; `to_config` / `from_config` convert.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from attnsim import limits
from attnsim.errors import InputError

# Integer options and their ranges (lowest, highest); attnsim/limits.py says why each bound sits there.
OPTION_RANGES = {"splits": (1, limits.MAX_SPLITS), "grid": (1, limits.MAX_PLAN_CTAS),
                 "kv_tile_tokens": (16, limits.MAX_KV_TILE_TOKENS), "num_warps": (1, 32), "num_stages": (1, 16),
                 "dp_outputs": (0, limits.MAX_OUTPUTS), "chunk_tokens": (1, limits.MAX_CONTEXT),
                 "max_splits": (1, limits.MAX_SPLITS), "batch_invariant": (0, 1),
                 "tune": (1, limits.MAX_TUNE_PLANS)}
POWER_OF_TWO = ("kv_tile_tokens", "num_warps")  # a KV tile and a warp count the kernels compile
KERNEL_FIELDS = ("kv_tile_tokens", "num_warps", "num_stages")  # our kernels' shape
PIN_FIELDS = ("splits", "grid", "dp_outputs", "chunk_tokens")  # what a plan of ours decides (planner axes)
# Word-valued options and their choices, the default first. epilogue: how a stream-K plan merges an output
# whose tiles straddle CTAs: "tree" (a host CTA waits on its peers' flags, merge tree; needs a co-resident
# grid) or "last" (every contributor stores a partial and bumps the output's arrival counter, the last
# arrival merges; no waiting). A plan names it only when it is not the default.
EPILOGUE_TREE, EPILOGUE_LAST = "tree", "last"
OPTION_CHOICES = {"epilogue": (EPILOGUE_TREE, EPILOGUE_LAST)}
OPTION_NAMES = (*OPTION_RANGES, *OPTION_CHOICES)  # every plan option a PlanConfig carries


@dataclass(frozen=True)
class Options:
    """No options: a plan fixed by the workload alone."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check_value(f.name, getattr(self, f.name))
            if f.name in OPTION_CHOICES and getattr(self, f.name) == OPTION_CHOICES[f.name][0]:
                object.__setattr__(self, f.name, None)  # the default is named by its absence: one spec per plan

    def set(self) -> dict:
        """The fields that are set, by name, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @classmethod
    @functools.cache  # a class's fields are fixed; the planner asks per candidate
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class KernelOptions(Options):
    """A plan run by one of our Triton kernels: its KV tile (tokens), warps and pipeline stages."""

    kv_tile_tokens: int | None = None
    num_warps: int | None = None
    num_stages: int | None = None


@dataclass(frozen=True)
class SplitOptions(KernelOptions):
    """Split-KV: KV splits per output (default: the strategy's split rule)."""

    splits: int | None = None


@dataclass(frozen=True)
class SplitKvOptions(SplitOptions):
    """Split-KV in one launch: a split count for every output, or with chunk_tokens each sequence cut
    alone into ceil(len / chunk) splits, at most max_splits (balanced's rule: batch-invariant)."""

    chunk_tokens: int | None = None
    max_splits: int | None = None


@dataclass(frozen=True)
class GridOptions(KernelOptions):
    """A persistent grid (default: the resident capacity)."""

    grid: int | None = None


@dataclass(frozen=True)
class EpilogueOptions(GridOptions):
    """A persistent grid, and how straddled outputs are merged (OPTION_CHOICES["epilogue"])."""

    epilogue: str | None = None


@dataclass(frozen=True)
class StreamKOptions(EpilogueOptions):
    """Stream-K; with chunk_tokens (and epilogue=last) its cuts fall only on each output's own fixed
    chunks, at most max_splits of them (partition/streamk_chunks.py): batch-invariant."""

    chunk_tokens: int | None = None
    max_splits: int | None = None


@dataclass(frozen=True)
class HybridOptions(EpilogueOptions):
    """Data-parallel + stream-K: outputs run whole before the stream-K part (a multiple of the grid)."""

    dp_outputs: int | None = None


@dataclass(frozen=True)
class ChunkOptions(GridOptions):
    """Balanced split-KV: a fixed chunk (tokens, a multiple of the KV tile), else the chunk whose
    chunks fit `grid` (default: the resident capacity); max_splits: a sequence longer than that many
    chunks is cut into that many larger ones (its own chunk: ceil(tiles / max_splits) tiles)."""

    chunk_tokens: int | None = None
    max_splits: int | None = None


@dataclass(frozen=True)
class PlannerOptions(KernelOptions):
    """The planner's choice: pinned search values restrict it; batch_invariant=1 keeps only plans
    whose split boundaries depend on each sequence alone; tune=K (on a GPU: bench/tune.py) times the model's
    K fastest plans (and the batch-invariant one) and runs the fastest measured (the model alone, without a
    GPU, runs its own fastest)."""

    splits: int | None = None
    grid: int | None = None
    dp_outputs: int | None = None
    chunk_tokens: int | None = None
    batch_invariant: int | None = None
    tune: int | None = None


@dataclass(frozen=True)
class LibrarySplitOptions(Options):
    """A third-party library's plan: only its split count can be overridden (what it launched)."""

    splits: int | None = None


def check_value(name: str, value, field: str | None = None) -> None:
    """`value` of option `name` is None, one of OPTION_CHOICES[name], or an integer within OPTION_RANGES
    (powers of two where the kernels compile them); `field` names it in messages (a CLI flag,
    'strategy' for a plan spec)."""
    if value is None:
        return
    field = field or name
    if name in OPTION_CHOICES:
        if value not in OPTION_CHOICES[name]:
            raise InputError(field, f"{name} must be one of {', '.join(OPTION_CHOICES[name])}, got {value!r}")
        return
    low, high = OPTION_RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(field, f"{name} must be an integer >= {low}, got {value!r}")
    limits.check_max(value, high, field, name)
    if name in POWER_OF_TWO and value & (value - 1):
        raise InputError(field, f"{name} must be a power of two, got {value}")


def build(options_type: type[Options], values: dict, owner: str, field: str | None = None) -> Options:
    """`options_type(**values)`, a field it does not declare being an InputError naming it
    (`owner`: the strategy, for the message; `field`: where the values came from)."""
    unknown = [k for k in values if k not in options_type.names()]
    if unknown:
        raise InputError(field or unknown[0], f"{owner} takes no {unknown[0]}"
                                              f"{'; it takes ' + ', '.join(options_type.names()) if options_type.names() else ''}")
    try:
        return options_type(**values)
    except InputError as exc:
        raise InputError(field or exc.field, exc.message) from None


def keep_declared(options_type: type[Options], values: dict) -> dict:
    """The values `options_type` declares (a shared --splits applies only where a strategy takes it)."""
    return {k: v for k, v in values.items() if k in options_type.names() and v is not None}


def kernel_shape(values: dict) -> dict:
    """The set kernel-shape fields (KERNEL_FIELDS) among option `values`: what every plan a search names runs with."""
    return {k: v for k, v in values.items() if k in KERNEL_FIELDS and v is not None}
