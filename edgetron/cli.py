"""The ``edgetron`` command.

Each subcommand lives in its own module under :mod:`edgetron.commands` and
exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
handler ``func(args) -> int``. User errors -- a bad config, trace, CSV or argument
(:class:`~edgetron.errors.EdgetronError`) or a file that cannot be read or written
(``OSError``) -- are printed as one line, ``edgetron <command>: error: <message>``,
without a traceback, and the command exits with status 1; the message names the file,
the op and the field (``docs/trace-format.md``, section *Error messages*). Output into a
pipe whose reader has gone (``edgetron trace show vit-tiny | head``) stops quietly with
status 141, as a process ended by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from edgetron import commands
from edgetron.errors import EdgetronError

__all__ = ["build_parser", "main"]

#: Exit status after the reader of stdout went away: 128 + SIGPIPE (13), the shell's
#: status of a process ended by that signal.
_EXIT_BROKEN_PIPE = 128 + 13


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :mod:`edgetron.commands`."""
    parser = argparse.ArgumentParser(
        prog="edgetron",
        description="Integer-only edge-AI accelerator: golden models, simulator, RTL.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe raises here rather than at interpreter exit
        return status
    except BrokenPipeError:
        # Python's documented idiom: point stdout at devnull so that the interpreter's
        # final flush of the unwritten output does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return _EXIT_BROKEN_PIPE
    except (EdgetronError, OSError) as exc:
        return _error(args.command, exc)
    except ValueError as exc:
        # A ValueError that is no EdgetronError is an error its module has not classified
        # yet (a defect to fix where it is raised): still one line, never a traceback.
        return _error(args.command, exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _error(command: str, exc: Exception) -> int:
    """Print ``exc`` as the command's one-line error; returns the exit status, 1."""
    print(f"edgetron {command}: error: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
