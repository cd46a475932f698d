"""A scenario: which shapes, on which GPUs, at which batch sizes and context lengths.

Plain frozen data, built by `loader.load_scenario` (which validates) or by hand in tests. `cases()`
expands it into the decode workloads to model: every shape x batch x context of the uniform grid,
then every shape x ragged mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnsim import strategies
from attnsim.scenarios.models import ModelShape
from attnsim.simulator.hardware import GpuSpec
from attnsim.simulator.workload import DecodeWorkload

DISTRIBUTIONS = ("lognormal", "uniform", "choice", "fixed")


def default_strategies() -> tuple[str, ...]:
    return strategies.default_names()


@dataclass(frozen=True)
class RaggedMix:
    """A generator of per-sequence context lengths (tokens), reproducible from its seed.

    lognormal: lengths ~ median x exp(sigma x N(0, 1)), clipped to [min_tokens, max_tokens]
    uniform:   integers uniform in [min_tokens, max_tokens]
    choice:    drawn from `values` with probabilities `weights` (uniform when empty)
    fixed:     exactly `values` (batch = len(values))
    """

    name: str
    batch: int
    distribution: str
    seed: int = 0
    median_tokens: int = 4096
    sigma: float = 1.0
    min_tokens: int = 1
    max_tokens: int = 1 << 20
    values: tuple[int, ...] = ()
    weights: tuple[float, ...] = ()

    def contexts(self) -> tuple[int, ...]:
        """The batch's context lengths; the same seed always gives the same lengths."""
        rng = np.random.default_rng(self.seed)
        if self.distribution == "fixed":
            return tuple(self.values)
        if self.distribution == "choice":
            p = np.asarray(self.weights) / np.sum(self.weights) if self.weights else None
            return tuple(int(v) for v in rng.choice(self.values, size=self.batch, p=p))
        if self.distribution == "uniform":
            return tuple(int(v) for v in rng.integers(self.min_tokens, self.max_tokens + 1, size=self.batch))
        raw = self.median_tokens * np.exp(self.sigma * rng.standard_normal(self.batch))
        return tuple(int(v) for v in np.clip(np.rint(raw), self.min_tokens, self.max_tokens))


@dataclass(frozen=True)
class Case:
    """One workload to model, with the labels reports group by."""

    shape: ModelShape
    workload: DecodeWorkload
    mix: str = ""  # ragged mix name; "" for the uniform grid

    @property
    def labels(self) -> dict:
        return {"model": self.shape.name, "mix": self.mix or "uniform",
                "total_tokens": sum(self.workload.contexts)}  # KV tokens over the whole batch


@dataclass(frozen=True)
class TimelineChoice:
    """Which workload the SM-timeline section shows (defaults chosen in `Scenario.timeline_case`)."""

    model: str = ""
    mix: str = ""
    batch: int = 0
    context: int = 0


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    shapes: tuple[ModelShape, ...]
    gpus: tuple[GpuSpec, ...]
    batches: tuple[int, ...] = ()
    contexts: tuple[int, ...] = ()  # tokens, ascending
    ragged: tuple[RaggedMix, ...] = ()
    strategies: tuple[str, ...] = field(default_factory=default_strategies)  # registry names
    whatif_gpus: tuple[GpuSpec, ...] = ()
    dtype: str = "float16"
    q_len: int = 1
    page_size: int = 0  # paged KV cache: tokens per page (0: contiguous)
    kv_dtype: str = ""  # KV cache dtype ("": dtype)
    description: str = ""
    source: str = ""  # the file it was loaded from
    timeline: TimelineChoice = field(default_factory=TimelineChoice)

    def _uniform(self, shape: ModelShape, batch: int, context: int) -> Case:
        return Case(shape, shape.workload(batch, context, self.dtype, self.q_len, self.page_size, self.kv_dtype))

    def _ragged(self, shape: ModelShape, mix: RaggedMix) -> Case:
        return Case(shape, shape.workload(mix.batch, list(mix.contexts()), self.dtype, self.q_len, self.page_size,
                                          self.kv_dtype), mix.name)

    def uniform_cases(self) -> list[Case]:
        return [self._uniform(s, b, c) for s in self.shapes for b in self.batches for c in self.contexts]

    def ragged_cases(self) -> list[Case]:
        return [self._ragged(s, m) for s in self.shapes for m in self.ragged]

    def cases(self) -> list[Case]:
        return self.uniform_cases() + self.ragged_cases()

    def timeline_case(self) -> Case:
        """The chosen workload, else the first ragged mix, else the first batch at ~4k context."""
        choice = self.timeline
        shape = next((s for s in self.shapes if s.name == choice.model), self.shapes[0])
        mix = next((m for m in self.ragged if m.name == choice.mix), None)
        wants_uniform = bool(choice.batch or choice.context) and bool(self.contexts)
        if mix is None and self.ragged and not wants_uniform:
            mix = self.ragged[0]
        if mix is not None:
            return self._ragged(shape, mix)
        context = choice.context or min(self.contexts, key=lambda c: abs(np.log2(c) - 12))  # ~4k tokens
        return self._uniform(shape, choice.batch or self.batches[0], context)


def workload_scenario(workloads, gpus, strategy_names, model: str = "") -> Scenario:
    """The scenario of command-line workloads (`attnsim plot whatif --model ... --context ...`): one
    shape (one GPU's heads of a `tp` group, as the workloads have them), its uniform contexts, and a
    ragged batch as a fixed mix; serving settings from the workloads."""
    w = workloads[0]
    shape = ModelShape(model or f"q{w.q_heads}/kv{w.kv_heads}/d{w.head_dim}", w.q_heads, w.kv_heads, w.head_dim,
                       w.layers, tp=w.tp, kv_lora_rank=w.kv_lora_rank)
    contexts = tuple(sorted({x.contexts[0] for x in workloads if not x.is_ragged}))
    ragged = tuple(RaggedMix("ragged", x.batch, "fixed", values=x.contexts) for x in workloads if x.is_ragged)
    return Scenario(name="command line", title=f"{shape.name} on {', '.join(g.name for g in gpus)}", shapes=(shape,),
                    gpus=tuple(gpus), batches=(w.batch,) if contexts else (), contexts=contexts, ragged=ragged,
                    strategies=tuple(strategy_names), dtype=w.dtype, q_len=w.q_len, page_size=w.page_size,
                    kv_dtype=w.kv_dtype)
