"""`python -m export.eval KIND`: each kind lives in `export.eval.<kind>` with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

KINDS = ("detector", "leak", "utility", "identity", "closeup", "incontext", "plates", "crowd")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export.eval",
        description="Measure edgeanon: detector recall/AP, leak rate, AP retention, identity leak.",
    )
    sub = parser.add_subparsers(dest="kind", metavar="KIND")
    for kind in KINDS:
        try:
            module = importlib.import_module(f"export.eval.{kind}")
        except ModuleNotFoundError as exc:
            if exc.name != f"export.eval.{kind}":
                raise
            continue
        module.register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
