"""The strategy registry is the one place a strategy is named: entries are complete and consistent,
no other module keys a strategy by its name, and the package has no import cycles or oversized files."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

from attnsim import strategies
from attnsim.errors import InputError
from attnsim.simulator import mla
from attnsim.simulator.hardware import CostParams
from attnsim.simulator.partition.common import PlanConfig

PACKAGE = Path(strategies.__file__).parent
COST_FIELDS = {f.name for f in dataclasses.fields(CostParams)}
# Where a strategy may be named: the registry, the plan files, the kernels.
ALLOWED = ("strategies.py", "simulator/partition/", "kernels/fa2_decode.py", "kernels/flash_decoding.py",
           "kernels/lean_decode.py", "kernels/tiles.py")


@pytest.mark.parametrize("name", list(strategies.REGISTRY))
def test_entries_are_complete(name):
    s = strategies.get(name)
    assert s.name == name and s.summary and s.color.startswith("#")
    for family, params in {**s.families, **s.mla_families}.items():
        assert set(params) <= COST_FIELDS, family
    for family, fixed in s.fixed_params.items():
        assert (family in s.families or family in s.mla_families) and set(fixed) <= COST_FIELDS
    assert all(mla.narrow_family(f).replace(mla.FAMILY_SUFFIX, "", 1) in s.families  # cost_for's fallback
               for f in s.mla_families)
    assert s.mla_owner is None or strategies.get(s.mla_owner).mla_families
    assert s.options <= {f.name for f in dataclasses.fields(PlanConfig)}
    assert s.runnable or s.predictable, "an entry must either run or be modelled"
    if s.kernel:
        assert not s.baseline and s.kernel.warps in (1, 2, 4, 8, 16)
    for alias in s.aliases:
        assert strategies.canonical(alias.upper()) == name


def test_cost_families_are_owned_once():
    owners = [f for s in strategies.REGISTRY.values() for f in s.families]
    assert len(owners) == len(set(owners))


def test_parse_list_canonicalises_and_refuses():
    assert strategies.parse_list("lean, FD ,fa2") == ("streamk", "flashdecoding", "fa2")
    for bad in ("", ",", "fa2,,streamk", "nope"):
        with pytest.raises(InputError) as err:
            strategies.parse_list(bad)
        assert err.value.field == "strategy"


def _string_constants(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_strategy_name_is_keyed_outside_the_registry():
    """A literal equal to a strategy name (or alias) is a table keyed by name: it belongs in the registry."""
    names = {n for s in strategies.REGISTRY.values() for n in (s.name, *s.aliases)}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(ALLOWED):
            continue
        offenders += [f"{rel}:{line}: {value!r}" for line, value in _string_constants(path) if value in names]
    assert offenders == []


def _module_imports(path: Path, module: str) -> set[str]:
    """attnsim modules a module imports, at module level or inside functions (a lazy import is still
    an arrow of the house)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("attnsim")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attnsim"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _is_module(sub) else node.module)
    return found - {module}


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[module] = _module_imports(path, module)
    return graph


# The floors above the simulator: nothing in attnsim.simulator may import from them.
ABOVE_THE_SIMULATOR = ("attnsim.strategies", "attnsim.plans", "attnsim.planner", "attnsim.profiles",
                       "attnsim.predict", "attnsim.kernels", "attnsim.bench", "attnsim.validation",
                       "attnsim.reports", "attnsim.scenarios", "attnsim.cli")


def test_the_simulator_is_the_ground_floor():
    upward = sorted(f"{m} -> {t}" for m, targets in _import_graph().items() if m.startswith("attnsim.simulator")
                    for t in targets if t.startswith(ABOVE_THE_SIMULATOR))
    assert upward == []


def test_the_package_has_no_import_cycles():
    graph = _import_graph()
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt in graph and not state.get(nxt):
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if not state.get(module):
            visit(module, [module])


def test_no_source_file_exceeds_400_lines():
    root = PACKAGE.parent
    long = [f"{p.relative_to(root)} ({n})" for p in sorted(root.glob("**/*.py"))
            if ".venv" not in p.parts and (n := len(p.read_text().splitlines())) > 400]
    assert long == []
