"""toml_lines: every key is found on the line it is written on."""

from attnsim.scenarios.toml_lines import key_lines, line_of

TEXT = '''name = "x"   # a comment [not a table]
contexts = [
  "1k",
  "4k",
]
"quoted key" = 1
[timeline]
mix = "a"

[[ragged]]
name = "a"
values = [1,
  2]

[[ragged]]
name = "b"
table.dotted = 3
'''


def test_keys_tables_and_arrays_of_tables_have_their_lines():
    lines = key_lines(TEXT)
    assert lines[("name",)] == 1
    assert lines[("contexts",)] == 2
    assert lines[("quoted key",)] == 6
    assert lines[("timeline",)] == 7 and lines[("timeline", "mix")] == 8
    assert lines[("ragged", 0)] == 10 and lines[("ragged", 0, "values")] == 12
    assert lines[("ragged", 1, "name")] == 16
    assert lines[("ragged", 1, "table", "dotted")] == 17


def test_unknown_paths_fall_back_to_the_nearest_parent():
    lines = key_lines(TEXT)
    assert line_of(lines, ("contexts", 1)) == 2  # items of a multi-line array: the key's line
    assert line_of(lines, ("ragged", 1, "missing")) == 15
    assert line_of(lines, ("nowhere",)) is None
