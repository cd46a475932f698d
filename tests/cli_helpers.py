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
