"""Scenario TOML files -> a validated `Scenario`. The packaged ones are reachable by name.

Format (every key optional unless said; sizes are integers or strings like "4k", "1M"):

    name = "my-study"                  # default: the file name
    title = "Llama-3.1-8B on H100"
    description = "what this shows"
    gpus = ["h100"]                    # presets or profile files (relative to this file)
    whatif_gpus = ["h100", "h200", "a100", "l40s"]   # [] turns the what-if section off
    strategies = ["fa2", "flashdecoding", "streamk"]   # any modelled strategy (`attnsim predict --help`)
    dtype = "float16"
    q_len = 1                          # 2..16: speculative-decoding verify
    tp = 1                             # tensor-parallel GPUs: heads per GPU = heads / tp (vLLM's rule)
    page_size = 16                     # paged KV cache (default 0: contiguous)
    kv_dtype = "fp8"                   # KV cache dtype (default: dtype)
    models = ["llama-3.1-8b"]          # presets or config.json paths (relative to this file); and/or
                                       # raw [[shapes]] below (one of them required)
    batches = [1, 8]
    contexts = ["1k", "4k", "64k"]     # or { from = "1k", to = "512k", per_octave = 1 }

    [[shapes]]                         # a raw attention shape
    name = "mqa-128"
    q_heads = 128
    kv_heads = 1
    head_dim = 128

    [[ragged]]                         # a ragged batch generator (see RaggedMix)
    name = "chat"
    distribution = "lognormal"         # lognormal | uniform | choice | fixed
    batch = 16
    seed = 7
    median = "4k"
    sigma = 1.0
    min = 128
    max = "128k"

    [timeline]                         # the workload the SM timeline shows
    model = "llama-3.1-8b"
    mix = "chat"                       # or batch = 1 and context = "4k"
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np

from attnsim import limits, strategies
from attnsim.errors import InputError
from attnsim.scenarios import hf_config, models
from attnsim.scenarios.budget import check_budget
from attnsim.scenarios.checks import Checker, ScenarioError, Problem, suggest
from attnsim.scenarios.ragged import read_ragged
from attnsim.scenarios.scenario import Scenario, TimelineChoice
from attnsim.scenarios.toml_lines import key_lines
from attnsim.profiles import resolve_gpu
from attnsim.simulator.workload import DTYPE_ALIASES, DTYPE_BYTES

TOP_KEYS = ("name", "title", "description", "gpus", "whatif_gpus", "strategies", "dtype", "q_len",
            "tp", "page_size", "kv_dtype", "models", "shapes", "batches", "contexts", "ragged", "timeline")
SERVING_KEYS = ("q_len", "page_size", "kv_dtype")  # workload fields set once per scenario
WHATIF_DEFAULT = ("h100", "h200", "a100", "l40s")


def scenario_names() -> list[str]:
    """Scenarios shipped with attnsim (attnsim/scenarios/*.toml)."""
    return sorted(p.name[:-5] for p in resources.files("attnsim.scenarios").iterdir() if p.name.endswith(".toml"))


def _is_packaged(text: str) -> bool:
    """A shipped scenario's name that no file in the working folder shadows."""
    return text in scenario_names() and not Path(text).exists()


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A packaged scenario by name, or a TOML file by path."""
    text = str(name_or_path)
    if _is_packaged(text):
        packaged = resources.files("attnsim.scenarios") / f"{text}.toml"
        return parse_scenario(packaged.read_text(), f"{text}.toml", Path(str(packaged)).parent)
    path = Path(text)
    try:
        body = path.read_text() if path.is_file() else None
    except OSError as exc:
        raise InputError("scenario", f"cannot read {_shown(text)}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError("scenario", f"{_shown(text)} is not a text (TOML) file") from None
    if body is None:
        known = ", ".join(scenario_names())
        raise InputError("scenario", f"no file {_shown(text)!r} and no scenario of that name"
                                     f"{suggest(text, scenario_names())} (named: {known})")
    return parse_scenario(body, path.name, path.parent, default_name=path.stem)


def scenario_files(name_or_path: str | Path) -> list[str]:
    """The files a scenario (already loaded, so valid) reads: its TOML and the profile and config.json
    files it names. For pathcheck.check_apart: an output may not overwrite them."""
    text = str(name_or_path)
    if _is_packaged(text):
        return [str(resources.files("attnsim.scenarios") / f"{text}.toml")]
    path = Path(text)
    data = tomllib.loads(path.read_text())
    named = [_gpu_argument(n, path.parent) for key in ("gpus", "whatif_gpus") for n in data.get(key, [])]
    named += [_model_argument(n, path.parent) for n in data.get("models", [])]
    return [text] + named


def _gpu_argument(name: str, base_dir: Path) -> str:
    """A scenario's GPU entry as resolve_gpu takes it: profile files are relative to the scenario."""
    local = base_dir / name
    return str(local) if local.suffix in (".json", ".toml") else name


def _model_argument(name: str, base_dir: Path) -> str:
    """A scenario's model entry as models.from_name takes it: config files are relative to the scenario."""
    return str(base_dir / name) if hf_config.looks_like_config(name) else name


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:60] + "..." + text[-12:]


def parse_scenario(text: str, source: str, base_dir: Path, default_name: str = "scenario") -> Scenario:
    """Validate a scenario's TOML text; raises ScenarioError listing every mistake."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = int(where.group(1)) if where else None
        raise ScenarioError(source, [Problem("syntax", line, str(exc))]) from None
    check = Checker(source, key_lines(text))
    check.known_keys(data, TOP_KEYS)
    fields = _read_fields(data, check, base_dir, default_name)
    check.raise_if_any()
    scenario = Scenario(**fields)
    _check_cases(scenario, check)
    check.raise_if_any()
    try:
        check_budget(scenario)
    except InputError as exc:
        check.fail((exc.field,), exc.message)
    check.raise_if_any()
    return scenario


def _read_fields(data: dict, check: Checker, base_dir: Path, default_name: str) -> dict:
    name = check.string(data, "name", (), default_name)
    shapes = _shard(_read_models(data, check, base_dir) + _read_shapes(data, check), data, check)
    if not shapes and "models" not in data and "shapes" not in data:
        check.fail(("models",), "missing: give `models = [...]` and/or [[shapes]] tables")
    ragged = read_ragged(check.tables(data, "ragged", limits.MAX_RAGGED_MIXES), check)
    contexts = _read_contexts(data, check)
    batches = _read_sizes(data, "batches", check, limits.MAX_BATCH) if "batches" in data else [1]
    if "batches" in data and "contexts" not in data:
        check.fail(("batches",), "given without `contexts` (ragged mixes set their own batch)")
    if "contexts" not in data and "ragged" not in data:
        check.fail(("contexts",), "missing: give `contexts = [...]` and/or [[ragged]] mixes")
    return dict(
        name=name, title=check.string(data, "title", (), name), description=check.string(data, "description", (), ""),
        shapes=tuple(shapes), gpus=tuple(_read_gpus(data, "gpus", ["h100"], check, base_dir)),
        whatif_gpus=tuple(_read_gpus(data, "whatif_gpus", list(WHATIF_DEFAULT), check, base_dir)),
        strategies=tuple(_read_strategies(data, check)), dtype=_read_dtype(data, check),
        q_len=check.integer(data, "q_len", (), 1, maximum=limits.MAX_Q_LEN),
        batches=tuple(sorted(set(batches))) if contexts else (),
        page_size=check.integer(data, "page_size", (), 0, minimum=0), kv_dtype=check.string(data, "kv_dtype", (), ""),
        contexts=tuple(contexts), ragged=tuple(ragged), source=check.source,
        timeline=_read_timeline(data, check, shapes, ragged),
    )


def _read_models(data: dict, check: Checker, base_dir: Path) -> list[models.ModelShape]:
    """Presets by name, or Hugging Face config.json files (paths relative to the scenario file)."""
    if "models" not in data:
        return []
    found = []
    for i, name in enumerate(check.list_of(data, "models", (), (str,), max_items=limits.MAX_SCENARIO_PANELS)):
        try:
            found.append(models.from_name(_model_argument(name, base_dir)))
        except InputError as exc:
            hint = exc.message if hf_config.looks_like_config(name) else (
                f"unknown model {name!r}{suggest(models.canonical_name(name), models.MODELS)} "
                "(`attnsim scenarios` lists them)")
            check.fail(("models", i), hint)
    return found


def _shard(shapes: list[models.ModelShape], data: dict, check: Checker) -> list[models.ModelShape]:
    """Each shape's heads on one GPU of a `tp`-way tensor-parallel group."""
    tp = check.integer(data, "tp", (), 1)
    if not tp or tp == 1:
        return shapes
    sharded = []
    for shape in shapes:
        try:
            sharded.append(shape.sharded(tp))
        except InputError as exc:
            check.fail(("tp",), exc.message)
    return sharded


def _read_shapes(data: dict, check: Checker) -> list[models.ModelShape]:
    shapes = []
    for i, table in enumerate(check.tables(data, "shapes", limits.MAX_SCENARIO_PANELS)):
        path = ("shapes", i)
        check.known_keys(table, ("name", "q_heads", "kv_heads", "head_dim"), path)
        values = [check.integer(table, k, path, maximum=limits.MAX_HEADS) for k in ("q_heads", "kv_heads", "head_dim")]
        for key, value in zip(("q_heads", "kv_heads", "head_dim"), values):
            if key not in table:
                check.fail(path + (key,), "missing")
        if None in values:
            continue
        shape = models.ModelShape(check.string(table, "name", path) or "q{}-kv{}-d{}".format(*values), *values)
        try:
            shape.workload(1, 1)  # the workload's own checks: q_heads % kv_heads, supported head_dim
        except InputError as exc:
            check.fail(path + (exc.field,), exc.message)
            continue
        shapes.append(shape)
    return shapes


def _read_sizes(data: dict, key: str, check: Checker, maximum: int) -> list[int]:
    items = check.list_of(data, key, (), (int, str), max_items=limits.MAX_SWEEP_POINTS)
    sizes = [check.size(v, (key, i), maximum) for i, v in enumerate(items)]
    return [s for s in sizes if s is not None]


def _read_contexts(data: dict, check: Checker) -> list[int]:
    """A list of sizes, or { from, to, per_octave } for a geometric grid (per_octave points per 2x)."""
    if "contexts" not in data:
        return []
    spec = data["contexts"]
    if not isinstance(spec, dict):
        return sorted(set(_read_sizes(data, "contexts", check, limits.MAX_CONTEXT)))
    path = ("contexts",)
    check.known_keys(spec, ("from", "to", "per_octave"), path)
    lo, hi = check.size_key(spec, "from", path), check.size_key(spec, "to", path)
    per_octave = check.integer(spec, "per_octave", path, 1, maximum=limits.MAX_SWEEP_POINTS)
    missing = "from" not in spec or "to" not in spec
    if missing or (lo is not None and hi is not None and lo > hi):
        check.fail(path, f"needs `from` <= `to`, got {spec.get('from')!r} .. {spec.get('to')!r}")
    if missing or lo is None or hi is None or lo > hi:  # an invalid `from`/`to` is reported already
        return []
    steps = int(round(np.log2(hi / lo) * per_octave))
    if steps + 1 > limits.MAX_SWEEP_POINTS:
        check.fail(path + ("per_octave",), f"{steps + 1} points from {lo} to {hi} at {per_octave} per octave is above "
                                           f"the limit of {limits.MAX_SWEEP_POINTS} (attnsim/limits.py)")
        return []
    return sorted({int(round(lo * 2 ** (k / per_octave))) for k in range(steps + 1)} | {hi})


def _read_gpus(data: dict, key: str, default: list, check: Checker, base_dir: Path) -> list:
    names = (check.list_of(data, key, (), (str,), allow_empty=key == "whatif_gpus", max_items=limits.MAX_SCENARIO_GPUS)
             if key in data else default)
    specs = []
    for i, name in enumerate(names):
        try:
            specs.append(resolve_gpu(_gpu_argument(name, base_dir)))
        except InputError as exc:
            check.fail((key, i), exc.message if exc.field == "gpu" else f"{exc.field}: {exc.message}")
    return specs


def _read_strategies(data: dict, check: Checker) -> list[str]:
    names = check.list_of(data, "strategies", (), (str,)) if "strategies" in data else list(strategies.default_names())
    found = []
    for i, name in enumerate(names):
        try:
            strategy = strategies.get(name)
        except InputError:
            check.fail(("strategies", i), f"unknown strategy {name!r}; choose from {', '.join(strategies.predictable())}")
            continue
        if not strategy.predictable:
            check.fail(("strategies", i), f"{strategy.name} is timed but not modelled; choose from "
                                          f"{', '.join(strategies.predictable())}")
            continue
        found.append(strategy.name)
    return list(dict.fromkeys(found))


def _read_dtype(data: dict, check: Checker) -> str:
    dtype = check.string(data, "dtype", (), "float16") or "float16"
    canonical = DTYPE_ALIASES.get(dtype, dtype)
    if canonical not in DTYPE_BYTES:
        check.fail(("dtype",), f"{dtype!r} unsupported; choose float16 or bfloat16 (no decode kernel runs float32)")
        return "float16"
    return canonical


def _read_timeline(data: dict, check: Checker, shapes: list, ragged: list) -> TimelineChoice:
    table = data.get("timeline", {})
    path = ("timeline",)
    if not isinstance(table, dict):
        check.fail(path, "must be a table: [timeline]")
        return TimelineChoice()
    check.known_keys(table, ("model", "mix", "batch", "context"), path)
    model = _timeline_model(check.string(table, "model", path, "") or "", shapes, check)
    mix = check.string(table, "mix", path, "") or ""
    if mix and mix not in {m.name for m in ragged}:
        check.fail(path + ("mix",), f"no [[ragged]] mix named {mix!r}")
    return TimelineChoice(model, mix, check.integer(table, "batch", path, 0, minimum=0, maximum=limits.MAX_BATCH) or 0,
                          check.size_key(table, "context", path, 0) or 0)


def _timeline_model(model: str, shapes: list, check: Checker) -> str:
    names = {s.name for s in shapes}
    if not model or model in names:
        return model
    if models.canonical_name(model) in names:
        return models.canonical_name(model)
    check.fail(("timeline", "model"), f"{model!r} is not among this scenario's models/shapes")
    return ""


def _check_cases(scenario: Scenario, check: Checker) -> None:
    """Every case must build a workload (e.g. batch x context sizes the workload accepts)."""
    for key, cases in (("contexts", scenario.uniform_cases), ("ragged", scenario.ragged_cases)):
        try:
            cases()
        except InputError as exc:  # a serving key the workload refuses is named itself (page_size = 24)
            check.fail((exc.field if exc.field in SERVING_KEYS else key,), exc.message)
            return
