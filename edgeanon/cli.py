"""`edgeanon` command line: each subcommand lives in `edgeanon.commands.<name>`."""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys

from edgeanon import __version__
from edgeanon.commands.user_errors import say
from edgeanon.scrub import install_log_scrubber

# Each module has `register(subparsers)` that adds its parser and sets `func(args) -> int`.
COMMANDS = ("detect", "anonymize", "run", "doctor", "engines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeanon",
        description="Find every face and replace it, on the device: no raw face ever leaves it.",
        epilog="Run 'edgeanon COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"edgeanon {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"edgeanon.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"edgeanon.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    install_log_scrubber()  # no credentials in any log line, whoever logs it
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # No number option of any command means anything as nan or inf (argparse's float() takes both).
    for name, value in vars(args).items():
        if isinstance(value, float) and not math.isfinite(value):
            say(args.command, f"error: --{name.replace('_', '-')} must be a finite number, got {value}")
            return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
