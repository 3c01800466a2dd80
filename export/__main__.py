"""`python -m export COMMAND`: each command lives in one module of a subpackage (conversion, quantization, training)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# module -> CLI name; each module has `register(subparsers[, name])` setting `func(args) -> int`. `engine` is the
# runtime's builder (`edgeanon engines`), kept here under its old name.
COMMANDS = {
    "export.conversion.import_weights": "import-weights",
    "export.conversion.onnx_export": "onnx",
    "export.conversion.fp16": "fp16",
    "export.quantization.quantize": "quantize",
    "export.quantization.verify": "verify",
    "edgeanon.commands.engines": "engine",
    "export.all_steps": "all",
    "export.training.train": "train-generator",
    "export.training.gate": "gate-generator",
    "export.training.ksame_bank": "ksame-bank",
    "export.conversion.plates": "plates",
    "export.quantization.plates": "plates-variants",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Turn edgeanon's PyTorch detector and generator into ONNX, FP16, INT8 and TensorRT models.",
        epilog="Run 'python -m export COMMAND --help' for each command's options.",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, command in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            # A device has TensorRT but no torch/onnx: keep the other commands usable and say what is missing.
            unavailable(sub, command, exc.name or "a dependency")
            continue
        if module_name.startswith("edgeanon."):
            module.register(sub, command)
        elif hasattr(module, "register"):
            module.register(sub)
    return parser


def unavailable(sub: argparse._SubParsersAction, command: str, missing: str) -> None:
    p = sub.add_parser(command, help=f"(unavailable here: needs {missing})", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def refuse(_args: argparse.Namespace) -> int:
        print(f"python -m export {command}: needs the Python package '{missing}', which is not installed here "
              "(install requirements-dev.txt on a host machine)", file=sys.stderr)
        return 2
    p.set_defaults(func=refuse)


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
