"""Running `attnsim ...` in-process from tests (imported by test files; tests/ is on sys.path)."""

from attnsim.cli import main


def run_cli(args, capsys):
    """(exit status, stdout, stderr) of `attnsim ARGS`; main() exits only on errors."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def json_items(text: str, kind: str = "predictions") -> list:
    """The items of a versioned `predict` / `plan` JSON document (attnsim.schema); NaN refused."""
    import json

    from attnsim.schema import SCHEMA_VERSION

    def refuse(constant):
        raise AssertionError(f"{constant} in JSON output")

    document = json.loads(text, parse_constant=refuse)
    assert (document["schema_version"], document["kind"]) == (SCHEMA_VERSION, kind)
    return document[kind]
