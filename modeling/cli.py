"""The one command-line idiom of every motif CLI.

Every ``python -m`` entry point (``modeling.train``, ``pipelines.examples``, ``flows.serve``,
``bench.*`` ...) is written the same way::

    from modeling.cli import ArgumentParser, UsageError, command

    @command("train")
    def main(argv: list[str] | None = None) -> int:
        args = ArgumentParser(prog="python -m modeling.train").parse_args(argv)
        if bad(args):
            raise UsageError("--x must be >= 1")
        ...

- :class:`UsageError`: bad input. :func:`command` prints it as *one* line (``train: ...``) on
  stderr and the command returns 2, having written nothing; never a traceback.
- :class:`ArgumentParser`: argparse whose ``error()`` raises :class:`UsageError` (with
  ``(see --help)`` appended) instead of printing the usage block and exiting; subparsers inherit it.
- :func:`command`: the one place that silences library noise (:func:`modeling.quiet_libraries`)
  before the command body runs, so modules need no import-order tricks (no ``noqa: E402``).

The ``motif`` console command, which dispatches to these CLIs, is :mod:`modeling.motif`.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from modeling import first_line, quiet_libraries

__all__ = ["ArgumentParser", "UsageError", "command", "say_usage_error"]


class UsageError(Exception):
    """Bad input: the CLI prints the message as one line and exits 2, having written nothing."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are a :class:`UsageError` (one line), not a usage block.

    ``add_subparsers`` builds subparsers of the parser's own class, so they raise it too.
    """

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise UsageError(f"{message} (see --help)")


Main = TypeVar("Main", bound=Callable[..., int])


def say_usage_error(prog: str, error: BaseException, template: str = "{prog}: {message}") -> int:
    """Print ``error`` as one line on stderr (rank 0 only in a torchrun group) and return 2."""
    if int(os.environ.get("RANK", "0") or 0) == 0:
        print(template.format(prog=prog, message=first_line(error)), file=sys.stderr, flush=True)
    return 2


def command(prog: str, template: str = "{prog}: {message}") -> Callable[[Main], Main]:
    """Decorate a CLI ``main(argv) -> int``: quiet library noise, then run it; a
    :class:`UsageError` becomes one stderr line (``template``, default ``"<prog>: <message>"``)
    and exit code 2. Other exceptions pass through: the command decides what a failure says."""

    def wrap(main: Main) -> Main:
        @functools.wraps(main)
        def run(*args: object, **kwargs: object) -> int:
            quiet_libraries()
            try:
                return main(*args, **kwargs)
            except UsageError as exc:
                return say_usage_error(prog, exc, template)

        return run  # type: ignore[return-value]

    return wrap
