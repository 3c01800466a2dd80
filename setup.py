"""`pip install .`: the package, plus the committed default models copied into it (edgeanon/model_files).

Everything else is declared in pyproject.toml. An editable install copies nothing: it reads models/ of the
checkout (the rule is edgeanon.models.models_dir).
"""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # edgeanon.models imports nothing outside the standard library and edgeanon
from edgeanon.models import BUNDLED  # noqa: E402


class BuildWithModels(build_py):
    """build_py, then the default models into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        # A checkout has them all (committed). deploy/install.sh copies the sources without models/: the device
        # gets its models apart, in EDGEANON_MODELS, and its package then holds none (no empty folder either).
        found = [ROOT / "models" / name for name in BUNDLED if (ROOT / "models" / name).is_file()]
        if found:
            target = Path(self.build_lib) / "edgeanon" / "model_files"
            target.mkdir(parents=True, exist_ok=True)
            for path in found:
                shutil.copyfile(path, target / path.name)


setup(cmdclass={"build_py": BuildWithModels})
