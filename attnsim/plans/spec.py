"""Plan specs, the one text form of a plan: 'streamk:grid=132', 'flashdecoding:splits=4,kv_tile_tokens=32',
'fa2'. One parser and its inverse; every command, CSV column and report reads and writes them here.

A spec names a strategy (registry name or alias) and options of that strategy's type
(simulator/partition/options.py): an option the strategy does not declare, one given twice, or a
value that is not an integer in range (or, for a word-valued option such as stream-K's epilogue, one of
its choices) is an InputError. `plan_spec(*parse_plan_spec(s))` is the
canonical form of s (registry name, options in declaration order).
"""

from __future__ import annotations

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.simulator.partition import options as opts

MAX_DIGITS = 18


def parse_plan_spec(text: str, field: str = "strategy") -> tuple[strategies.Strategy, opts.Options]:
    """'streamk:grid=132' -> (the streamk entry, GridOptions(grid=132))."""
    name, _, rest = str(text).strip().partition(":")
    try:
        strategy = strategies.get(name)
    except InputError as exc:
        raise InputError(field, exc.message) from None
    values: dict[str, int | str] = {}
    for item in (p.strip() for p in rest.split(",")) if rest.strip() else ():
        key, sep, value = (s.strip() for s in item.partition("="))
        word = key in opts.OPTION_CHOICES and value.isascii() and value.isalpha()  # checked by the options type
        if not sep or not key or not (word or (value.isascii() and value.isdigit() and len(value) <= MAX_DIGITS)):
            raise InputError(field, f"{text!r}: expected name:option=integer[,option=integer...], e.g. "
                                    f"streamk:grid=132 (epilogue=tree|last)")
        if key in values:
            raise InputError(field, f"{text!r}: {key} given twice")
        values[key] = value if word else int(value)
    return strategy, opts.build(strategy.options_type, values, strategy.name, field)


def plan_spec(name: str, options: opts.Options | dict | None = None) -> str:
    """The inverse of parse_plan_spec: 'streamk:grid=132' ('streamk' without options)."""
    values = options.set() if isinstance(options, opts.Options) else {k: v for k, v in (options or {}).items()
                                                                       if v is not None}
    return name + (":" + ",".join(f"{k}={v}" for k, v in values.items()) if values else "")


def canonical_spec(text: str, field: str = "strategy") -> str:
    strategy, options = parse_plan_spec(text, field)
    return plan_spec(strategy.name, options)


def parse_spec_list(text: str, field: str = "strategy") -> tuple[str, ...]:
    """'fa2,lean:grid=132' -> ('fa2', 'streamk:grid=132'): canonical plan specs for a command that shows one
    row per strategy (predict, schedule, plot timeline); the same strategy twice is an InputError naming `field`."""
    by_name: dict[str, str] = {}
    for spec in dict.fromkeys(canonical_spec(s, field) for s in split_specs(text, field)):
        name = spec_strategy(spec)
        if name in by_name:
            raise InputError(field, f"{name} given twice ({by_name[name]}, {spec}): this command shows one plan a "
                                    "strategy; `attnsim bench --strategies` times several")
        by_name[name] = spec
    return tuple(by_name.values())


def spec_columns(text: str) -> tuple[str, str]:
    """A spec as a CSV row holds it: ('streamk', 'grid=132') (the strategy and options columns)."""
    name, _, options = str(text).strip().partition(":")
    return name, options


def spec_strategy(text: str) -> str:
    """The registry name of a spec's strategy ('lean:grid=8' -> 'streamk'), without checking options."""
    return strategies.canonical(spec_columns(text)[0])


def split_specs(text: str, field: str = "strategy") -> list[str]:
    """'fa2,streamk:grid=132,kv_tile_tokens=32,auto' -> ['fa2', 'streamk:grid=132,kv_tile_tokens=32', 'auto']:
    a list of plan specs separated by ',' (an item 'key=value' continues the spec before it: no
    strategy name holds '=') or by ';'. An empty item is an InputError naming `field`."""
    text = str(text)
    separator = ";" if ";" in text else ","
    specs: list[str] = []
    for part in (p.strip() for p in text.split(separator)):
        if separator == "," and specs and specs[-1] and "=" in part and ":" not in part:
            specs[-1] += "," + part
        else:
            specs.append(part)
    if not any(specs) or not all(specs):
        raise InputError(field, f"{text!r}: expected a comma-separated list of strategies or plan specs, "
                                "e.g. fa2,streamk:grid=132")
    return specs
