"""Where the runtime finds its models, and which method a model config gets from them.

One rule for the models folder, for the runtime and the host toolkit alike:
1. `$EDGEANON_MODELS` when it is set;
2. else the models inside the installed package (`pip install .` copies the committed defaults,
   detector.onnx and generator.onnx, into `edgeanon/model_files/`);
3. else `models/` of the checkout this package runs from (editable installs, PYTHONPATH, `make`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from edgeanon.defaults import DEFAULT_METHOD, FALLBACK_METHOD

if TYPE_CHECKING:  # the config is only read here, never built
    from edgeanon.config import ModelConfig

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / "model_files"  # written by setup.py's build step, absent in a checkout
CHECKOUT_DIR = PACKAGE_DIR.parent / "models"
# The files `pip install .` puts into BUNDLED_DIR (setup.py reads this list); README.md gives their licences.
BUNDLED = ("detector.onnx", "generator.onnx", "ksame-bank.npz", "README.md")


def models_dir() -> Path:
    """The models folder by the rule above."""
    env = os.environ.get("EDGEANON_MODELS")
    if env:
        return Path(env)
    return BUNDLED_DIR if BUNDLED_DIR.is_dir() else CHECKOUT_DIR


MODELS_DIR = models_dir()
DEFAULT_DETECTOR = MODELS_DIR / "detector.onnx"
DEFAULT_DETECTOR_INT8 = MODELS_DIR / "detector.int8.onnx"
DEFAULT_GENERATOR = MODELS_DIR / "generator.onnx"
# The k-Same reference bank (python -m export ksame-bank; research-only: averages of UTKFace photos).
DEFAULT_KSAME_BANK = MODELS_DIR / "ksame-bank.npz"
# The licence-plate detector (python -m export plates; AGPL-3.0, never committed).
DEFAULT_PLATES = MODELS_DIR / "plates.onnx"


def default_detector() -> Path:
    """The CPU INT8 detector when `make setup` produced it (its gates passed), else the FP32 one."""
    return DEFAULT_DETECTOR_INT8 if DEFAULT_DETECTOR_INT8.is_file() else DEFAULT_DETECTOR


def detector_path(model: ModelConfig) -> Path:
    """The detector file a chain built from `model` opens."""
    return Path(model.detector) if model.detector else default_detector()


def generator_path(model: ModelConfig) -> Path:
    """The generator file a chain built from `model` opens when its method is gan."""
    return Path(model.generator) if model.generator else DEFAULT_GENERATOR


def bank_path(model: ModelConfig) -> Path:
    """The k-Same reference bank a chain built from `model` opens when its method is ksame."""
    return Path(model.bank) if model.bank else DEFAULT_KSAME_BANK


def resolve_method(model: ModelConfig) -> str:
    """The method a chain built from `model` uses, the same in the CLI and the daemon.

    The method asked for when there is one. Unset, it is DEFAULT_METHOD; when that is gan and neither a
    generator was named nor the default generator model is there, it is FALLBACK_METHOD. A generator that
    was named, or gan asked for by name, must be there: building the chain then fails with its path.
    """
    if model.method is not None:
        return model.method
    if DEFAULT_METHOD == "gan" and model.generator is None and not DEFAULT_GENERATOR.is_file():
        return FALLBACK_METHOD
    return DEFAULT_METHOD
