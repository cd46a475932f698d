"""Reading `[[ragged]]` tables of a scenario file into `RaggedMix` generators, with checks."""

from __future__ import annotations

import math

from attnsim import limits
from attnsim.scenarios.checks import Checker, suggest
from attnsim.scenarios.scenario import DISTRIBUTIONS, RaggedMix

MAX_SIGMA = 10.0  # log-normal spread: e^(10 x 4) already spans any context range
MAX_SEED = (1 << 63) - 1  # TOML integers are 64-bit
RESERVED_NAME = "uniform"  # frames label the uniform grid's rows mix = "uniform"
COMMON_KEYS = ("name", "distribution", "batch", "seed")
DISTRIBUTION_KEYS = {  # keys each distribution reads besides COMMON_KEYS
    "lognormal": ("median", "sigma", "min", "max"),
    "uniform": ("min", "max"),
    "choice": ("values", "weights"),
    "fixed": ("values",),
}


def read_ragged(tables: list[dict], check: Checker) -> list[RaggedMix]:
    mixes = []
    for i, table in enumerate(tables):
        mix = _read_mix(table, ("ragged", i), check, default_name=f"mix-{i + 1}")
        if mix is not None and mix.name in {m.name for m in mixes} | {RESERVED_NAME}:
            why = "is reserved for the uniform grid" if mix.name == RESERVED_NAME else "is a duplicate"
            check.fail(("ragged", i, "name"), f"mix name {mix.name!r} {why}")
        elif mix is not None:
            mixes.append(mix)
    return mixes


def _read_mix(table: dict, path: tuple, check: Checker, default_name: str) -> RaggedMix | None:
    dist = check.string(table, "distribution", path, "lognormal")
    if dist not in DISTRIBUTIONS:
        check.fail(path + ("distribution",), f"{dist!r} unknown{suggest(dist, DISTRIBUTIONS)} "
                                              f"(choose {', '.join(DISTRIBUTIONS)})")
        return None
    own = COMMON_KEYS + DISTRIBUTION_KEYS[dist]
    for key in [k for k in table if k not in own and any(k in keys for keys in DISTRIBUTION_KEYS.values())]:
        reads = ", ".join(DISTRIBUTION_KEYS[dist])
        check.fail(path + (key,), f"not used by the {dist} distribution (it reads {reads})")
    check.known_keys({k: v for k, v in table.items() if not any(k in keys for keys in DISTRIBUTION_KEYS.values())},
                     own, path)
    before = len(check.problems)
    common = dict(name=check.string(table, "name", path, default_name) or default_name,
                  seed=check.integer(table, "seed", path, 0, minimum=0, maximum=MAX_SEED), distribution=dist)
    if dist in ("choice", "fixed"):
        fields = _read_values(table, path, check, dist)
    else:
        fields = _read_range(table, path, check, dist)
    return RaggedMix(**common, **fields) if len(check.problems) == before else None


def _read_range(table: dict, path: tuple, check: Checker, dist: str) -> dict:
    batch = _batch(table, path, check)
    if dist == "uniform":
        for key in ("min", "max"):
            if key not in table:
                check.fail(path + (key,), "missing (uniform needs min and max)")
    lo = check.size_key(table, "min", path, 1)
    hi = check.size_key(table, "max", path, 1 << 20)
    median = check.size_key(table, "median", path, 4096)
    sigma = check.number(table, "sigma", path, 1.0, maximum=MAX_SIGMA)
    if lo is not None and hi is not None and lo > hi:
        check.fail(path + ("min",), f"min ({lo}) is larger than max ({hi})")
    return dict(batch=batch or 1, min_tokens=lo or 1, max_tokens=hi or 1, median_tokens=median or 1, sigma=sigma or 1.0)


def _read_values(table: dict, path: tuple, check: Checker, dist: str) -> dict:
    if "values" not in table:
        check.fail(path + ("values",), f"missing ({dist} needs a list of context lengths)")
        return {}
    items = check.list_of(table, "values", path, (int, str), max_items=limits.MAX_BATCH)
    values = tuple(check.size(v, path + ("values", i)) for i, v in enumerate(items))
    if dist == "fixed":
        if "batch" in table and table["batch"] != len(values):
            check.fail(path + ("batch",), f"{table['batch']!r} but {len(values)} values are given (omit batch)")
        return dict(batch=len(values) or 1, values=values)
    weights = _read_weights(table, path, check, len(values))
    return dict(batch=_batch(table, path, check) or 1, values=values, weights=weights)


def _read_weights(table: dict, path: tuple, check: Checker, count: int) -> tuple[float, ...]:
    if "weights" not in table:
        return ()
    weights = check.list_of(table, "weights", path, (int, float), max_items=limits.MAX_BATCH)
    if len(weights) != count:
        check.fail(path + ("weights",), f"{len(weights)} weights for {count} values")
    elif not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        check.fail(path + ("weights",), "must be finite, non-negative, with a positive sum")
    return tuple(float(w) for w in weights)


def _batch(table: dict, path: tuple, check: Checker) -> int | None:
    if "batch" not in table:
        check.fail(path + ("batch",), "missing (sequences in the mix)")
        return None
    return check.integer(table, "batch", path, maximum=limits.MAX_BATCH)
