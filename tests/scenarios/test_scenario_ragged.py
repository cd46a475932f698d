"""Ragged-batch generators: reproducible from the seed, one length per sequence, inside their bounds."""

from hypothesis import given, settings, strategies as st

from attnsim.scenarios.scenario import RaggedMix
from scenario_helpers import MINIMAL, parse

seeds = st.integers(0, 2**32 - 1)
batches = st.integers(1, 64)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, batch=batches, lo=st.integers(1, 5000), span=st.integers(0, 200_000),
       sigma=st.floats(0.1, 3.0), dist=st.sampled_from(["lognormal", "uniform"]))
def test_range_mixes_stay_in_bounds_and_repeat_with_their_seed(seed, batch, lo, span, sigma, dist):
    mix = RaggedMix("m", batch, dist, seed, median_tokens=lo + span // 2, sigma=sigma, min_tokens=lo,
                    max_tokens=lo + span)
    lengths = mix.contexts()
    assert len(lengths) == batch
    assert all(lo <= n <= lo + span for n in lengths)
    assert lengths == mix.contexts()


@settings(max_examples=30, deadline=None)
@given(seed=seeds, batch=batches, values=st.lists(st.integers(1, 10**6), min_size=1, max_size=6))
def test_choice_draws_only_its_values_and_zero_weight_values_never(seed, batch, values):
    weights = tuple([0.0] + [1.0] * (len(values) - 1)) if len(values) > 1 else ()
    mix = RaggedMix("m", batch, "choice", seed, values=tuple(values), weights=weights)
    lengths = mix.contexts()
    allowed = set(values[1:]) if weights else set(values)
    assert len(lengths) == batch and set(lengths) <= allowed


def test_fixed_mixes_are_exactly_their_values_and_their_batch():
    scenario = parse(MINIMAL + '[[ragged]]\nname = "one-long"\ndistribution = "fixed"\nvalues = ["256k", 1000, 1000]\n')
    (mix,) = scenario.ragged
    assert mix.batch == 3 and mix.contexts() == (262144, 1000, 1000)
    (case,) = scenario.ragged_cases()
    assert case.workload.contexts == (262144, 1000, 1000) and case.mix == "one-long"


def test_different_seeds_give_different_batches():
    a = RaggedMix("a", 32, "lognormal", seed=1).contexts()
    b = RaggedMix("b", 32, "lognormal", seed=2).contexts()
    assert a != b
