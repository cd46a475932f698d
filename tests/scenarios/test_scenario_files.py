"""Scenario files: the shipped ones load; every kind of mistake is refused with one clear message
that names the field and the line."""

import pytest

from attnsim.errors import InputError
from attnsim.scenarios.loader import load_scenario, scenario_names
from scenario_helpers import MINIMAL, parse, problems_of

# (what is wrong, text, field, line, words the message must contain)
MISTAKES = [
    ("unknown top-level key", MINIMAL + 'strategy = ["fa2"]\n', "strategy", 3, "did you mean 'strategies'"),
    ("wrong type", MINIMAL + "title = 3\n", "title", 3, "must be a string"),
    ("zero batch", MINIMAL + "batches = [1, 0]\n", "batches[1]", 3, "must be positive"),
    ("bad size", 'models = ["llama-3.1-8b"]\ncontexts = ["1k", "4q"]\n', "contexts[1]", 2, "'4q'"),
    ("unknown model", 'models = ["llama-3-8b"]\ncontexts = ["1k"]\n', "models[0]", 1, "did you mean 'llama-3.1-8b'"),
    ("unknown gpu", MINIMAL + 'gpus = ["h900"]\n', "gpus[0]", 3, "unknown GPU 'h900'"),
    ("unknown strategy", MINIMAL + 'strategies = ["fa3"]\n', "strategies[0]", 3, "unknown strategy 'fa3'"),
    ("bad dtype", MINIMAL + 'dtype = "int8"\n', "dtype", 3, "'int8' unsupported"),
    ("q_heads not a multiple", 'contexts = ["1k"]\n[[shapes]]\nq_heads = 30\nkv_heads = 8\nhead_dim = 128\n',
     "shapes[0].q_heads", 3, "not a multiple of kv_heads"),
    ("unsupported head_dim", 'contexts = ["1k"]\n[[shapes]]\nq_heads = 8\nkv_heads = 8\nhead_dim = 100\n',
     "shapes[0].head_dim", 5, "unsupported"),
    ("shape field missing", 'contexts = ["1k"]\n[[shapes]]\nq_heads = 8\nhead_dim = 128\n',
     "shapes[0].kv_heads", 2, "missing"),
    ("no models", 'contexts = ["1k"]\n', "models", None, "missing"),
    ("no contexts", 'models = ["llama-3.1-8b"]\n', "contexts", None, "missing"),
    ("batches without contexts", 'models = ["llama-3.1-8b"]\nbatches = [1]\n[[ragged]]\nbatch = 2\n',
     "batches", 2, "without `contexts`"),
    ("reversed context range", 'models = ["llama-3.1-8b"]\ncontexts = { from = "8k", to = "1k" }\n',
     "contexts", 2, "`from` <= `to`"),
    ("unknown distribution", MINIMAL + '[[ragged]]\ndistribution = "lognorml"\nbatch = 4\n',
     "ragged[0].distribution", 4, "did you mean 'lognormal'"),
    ("ragged batch missing", MINIMAL + '[[ragged]]\ndistribution = "lognormal"\n', "ragged[0].batch", 3, "missing"),
    ("min above max", MINIMAL + '[[ragged]]\ndistribution = "uniform"\nbatch = 4\nmin = "8k"\nmax = "1k"\n',
     "ragged[0].min", 6, "larger than max"),
    ("parameter of another distribution", MINIMAL + '[[ragged]]\ndistribution = "uniform"\nbatch = 4\n'
     'min = 1\nmax = 9\nsigma = 2.0\n', "ragged[0].sigma", 8, "not used by the uniform distribution"),
    ("weights do not match values", MINIMAL + '[[ragged]]\ndistribution = "choice"\nbatch = 4\nvalues = [1, 2]\n'
     "weights = [1.0]\n", "ragged[0].weights", 7, "1 weights for 2 values"),
    ("fixed batch disagrees", MINIMAL + '[[ragged]]\ndistribution = "fixed"\nbatch = 3\nvalues = [1, 2]\n',
     "ragged[0].batch", 5, "2 values are given"),
    ("negative seed", MINIMAL + '[[ragged]]\nbatch = 2\nseed = -1\n', "ragged[0].seed", 5, "integer >= 0"),
    ("duplicate mix names", MINIMAL + '[[ragged]]\nname = "a"\nbatch = 2\n[[ragged]]\nname = "a"\nbatch = 2\n',
     "ragged[1].name", 7, "is a duplicate"),
    ("reserved mix name", MINIMAL + '[[ragged]]\nname = "uniform"\nbatch = 2\n', "ragged[0].name", 4, "reserved"),
    ("timeline names an absent mix", MINIMAL + '[timeline]\nmix = "chat"\n', "timeline.mix", 4, "no [[ragged]] mix"),
    ("timeline names an absent model", MINIMAL + '[timeline]\nmodel = "gemma-2-9b"\n', "timeline.model", 4,
     "not among"),
    ("syntax error", MINIMAL + 'title = "a" "b"\n', "syntax", 3, "at line 3"),
    ("unclosed array", MINIMAL + "batches = [1,\n", "syntax", None, "end of document"),
]


@pytest.mark.parametrize("what, text, field, line, words", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_refused_with_one_clear_message(what, text, field, line, words):
    problems = problems_of(text)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.field, problem.line) == (field, line)
    assert words in problem.message
    assert "\n" not in str(problem)


def test_several_mistakes_are_all_reported_in_file_order_on_one_line():
    text = 'models = ["nope"]\nbatches = [0]\ncontexts = ["1k"]\ndtype = "int8"\n'
    with pytest.raises(InputError) as info:
        parse(text)
    assert [p.line for p in info.value.problems] == [1, 2, 4]
    message = str(info.value)
    assert message.startswith("t.toml: 3 mistakes: line 1: models[0]")
    assert "\n" not in message


@pytest.mark.parametrize("name", scenario_names())
def test_shipped_scenarios_load_and_expand(name):
    scenario = load_scenario(name)
    cases = scenario.cases()
    assert cases and scenario.gpus
    assert len(cases) == len(scenario.shapes) * (len(scenario.batches) * len(scenario.contexts) + len(scenario.ragged))
    assert scenario.timeline_case().workload in {c.workload for c in cases}


def test_the_default_scenario_is_what_make_demo_reports():
    scenario = load_scenario("default")
    assert [s.name for s in scenario.shapes] == ["llama-3.1-8b", "llama-3.1-70b"]
    assert scenario.batches == (1, 8)
    assert scenario.contexts[0] == 1024 and scenario.contexts[-1] == 512 * 1024
    assert scenario.ragged and {g.name for g in scenario.whatif_gpus} == {"h100-sxm", "h200", "a100-80gb", "l40s"}


def test_named_sweeps_are_shipped():
    assert {"default", "context-sweep", "batch-sweep", "gqa-sweep", "ragged-mix"} <= set(scenario_names())


def test_a_context_range_doubles_per_octave_and_ends_on_its_bound():
    text = 'models = ["llama-3.1-8b"]\ncontexts = { from = "1k", to = "8k", per_octave = 2 }\n'
    assert parse(text).contexts == (1024, 1448, 2048, 2896, 4096, 5793, 8192, )


def test_a_file_path_loads_with_profiles_relative_to_it(tmp_path):
    (tmp_path / "gpu.toml").write_text('base = "h100"\nname = "my-h100"\nhbm_read_gbps = 3000.0\n')
    (tmp_path / "study.toml").write_text(MINIMAL + 'gpus = ["gpu.toml"]\n')
    scenario = load_scenario(tmp_path / "study.toml")
    assert scenario.name == "study" and scenario.gpus[0].name == "my-h100"


def test_unknown_scenario_names_suggest_the_close_one():
    with pytest.raises(InputError) as info:
        load_scenario("defualt")
    assert "did you mean 'default'" in info.value.message
