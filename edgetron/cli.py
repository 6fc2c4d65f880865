"""The ``edgetron`` command.

Each subcommand lives in its own module under :mod:`edgetron.commands` and
exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
handler ``func(args) -> int``. User errors (bad configs, traces, files) are
``ValueError``/``OSError`` subclasses: they are printed as one line, without a
traceback, and the command exits with status 1. Output into a pipe whose reader has
gone (``edgetron trace show vit-tiny | head``) stops quietly with status 141, as a
process ended by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from edgetron import commands

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
    except (ValueError, OSError) as exc:
        print(f"edgetron {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
