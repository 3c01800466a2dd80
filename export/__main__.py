"""`python -m export COMMAND`: each command lives in `export.commands.<name>`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# module name -> CLI name; each module has `register(subparsers)` setting `func(args) -> int`.
COMMANDS = {
    "import_weights": "import-weights",
    "onnx_export": "onnx",
    "fp16": "fp16",
    "quantize": "quantize",
    "verify": "verify",
    "trt_build": "engine",
    "all_steps": "all",
    "train": "train-generator",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Turn edgeanon's PyTorch detector and generator into ONNX, FP16, INT8 and TensorRT models.",
        epilog="Run 'python -m export COMMAND --help' for each command's options.",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS:
        try:
            module = importlib.import_module(f"export.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"export.{module_name}":
                raise
            continue
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
