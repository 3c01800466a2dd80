"""Mistakes the user can fix: one exception for every command, reported as one line naming the command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

# The exit code of a refused command line or input, as argparse's own.
USAGE_EXIT = 2


class UserError(Exception):
    """A mistake the user can fix; reported as one line."""


def say(command: str, message: str) -> None:
    """One line on stderr, prefixed with the command (`edgeanon anonymize: ...`)."""
    print(f"edgeanon {command}: {message}", file=sys.stderr)


def reporting(command: str, body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`body` with a UserError turned into `say(command, ...)` and exit code 2, never a traceback."""
    def run(args: argparse.Namespace) -> int:
        try:
            return body(args)
        except UserError as exc:
            say(command, str(exc))
            return USAGE_EXIT
    return run
