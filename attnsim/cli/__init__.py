"""The `attnsim` command line: a thin click group; each subcommand parses, calls one function, prints.

Commands live one module each and are registered explicitly below. Errors from bad input become
one line on stderr and exit status 2 (no traceback).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import warnings

import click
import numpy as np

from attnsim import fileio
from attnsim.errors import InputError

# (module under attnsim.cli, click command in it), in `attnsim --help` order
COMMANDS = (
    ("predict", "predict"), ("plan", "plan_command"), ("predict", "occupancy"), ("predict", "schedule"),
    ("bench", "bench_command"),
    ("calibrate", "calibrate"), ("validate", "validate"), ("report", "report"), ("report", "scenarios_command"),
    ("plot", "plot"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="attnsim")
def cli():
    """Predict, run and validate decode-attention partitionings (FA2, FlashDecoding, stream-K).

    \b
    Examples:
      attnsim predict --gpu h100 --batch 1 --q-heads 32 --kv-heads 8 --context 1k,64k,512k
      attnsim occupancy --gpu h100 --threads 128 --regs 96 --smem 40960
      attnsim schedule --strategy streamk --batch 2 --context 3000 --plot gantt.png
    """


def register_commands() -> click.Group:
    """Add every command of COMMANDS to the group (once)."""
    for module, name in COMMANDS:
        command = getattr(importlib.import_module(f"attnsim.cli.{module}"), name)
        if command.name not in cli.commands:
            cli.add_command(command)
    return cli


def main(argv: list[str] | None = None) -> None:
    with fileio.removing_temporaries_on_signals(), _no_warnings():
        register_commands()  # imports: their warnings are silenced too
        try:
            cli.main(args=argv, prog_name="attnsim", standalone_mode=False)
            fileio.raise_if_aborted()  # a signal's exit that library code swallowed still ends the run
        except InputError as exc:
            _fail(str(exc))
        except click.exceptions.NoArgsIsHelpError as exc:
            _fail(_choose_subcommand(exc.ctx))
        except click.exceptions.NoSuchOption as exc:
            _fail(f"{exc.option_name}: no such option")
        except click.ClickException as exc:
            _fail(exc.format_message())
        except (click.exceptions.Abort, BrokenPipeError, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            sys.exit(130)
        except OSError as exc:  # the machine failed a checked output (disk full, ...): no input was bad
            fileio.raise_if_aborted()  # or a signal removed the folder being written
            _fail(f"{exc.filename or 'output'}: {exc.strerror or exc}", status=1)


@contextlib.contextmanager
def _no_warnings():
    """Library warnings (numpy's overflow in exp, matplotlib's tick notes) never reach the terminal:
    inputs are checked at the edge, so what would warn is either harmless or refused there."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _choose_subcommand(ctx) -> str:
    group = ctx.command if ctx is not None else cli
    names = ", ".join(group.list_commands(ctx)) if isinstance(group, click.Group) else ""
    return f"{ctx.command_path if ctx else 'attnsim'}: give a command: {names} (--help explains each)"


def _fail(message: str, status: int = 2) -> None:
    click.echo("attnsim: error: " + " ".join(message.split()), err=True)  # always one line
    sys.exit(status)
