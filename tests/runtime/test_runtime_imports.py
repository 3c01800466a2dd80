"""The runtime's import boundaries, checked in a fresh interpreter: no torch, no host toolkit, a leaf config;
and `pip install .` installs a runtime that works without torch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parents[2]

# Import every module of edgeanon/ (except the `python -m edgeanon` entry point) and report what got loaded.
WALK = """
import importlib, json, pkgutil, sys
import edgeanon
failed = {}
for info in pkgutil.walk_packages(edgeanon.__path__, "edgeanon."):
    if info.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(info.name)
    except ImportError as exc:  # an optional accelerator package (tensorrt, jtop) that is not installed here
        failed[info.name] = str(exc)
print(json.dumps({"modules": sorted(sys.modules), "failed": failed}))
"""


def run_python(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO), **env})
    assert out.returncode == 0, out.stderr
    return out.stdout


def top_level(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_the_runtime_never_imports_torch_or_the_host_toolkit():
    report = json.loads(run_python(WALK))
    loaded = top_level(report["modules"])
    assert "edgeanon.pipeline" in report["modules"] and "edgeanon.commands.anonymize" in report["modules"]
    assert not loaded & {"torch", "torchvision", "export", "tests", "scripts", "bench", "devkit", "skimage"}, \
        sorted(loaded & {"torch", "torchvision", "export", "tests", "scripts", "bench", "devkit", "skimage"})
    # only optional accelerator packages may be missing, never one of the runtime's own modules' imports
    assert all("tensorrt" in why or "jtop" in why or "pycuda" in why or "cuda" in why
               for why in report["failed"].values()), report["failed"]


def test_config_is_a_leaf_it_loads_without_the_detector_or_opencv():
    modules = json.loads(run_python("import json, sys, edgeanon.config; print(json.dumps(sorted(sys.modules)))"))
    assert not {"edgeanon.detector", "edgeanon.anonymize", "cv2", "onnxruntime"} & set(modules)


def test_every_default_model_path_honours_edgeanon_models(tmp_path):
    code = ("import json, edgeanon.models as m, edgeanon.anonymize.gan as g, edgeanon.redactor as r; "
            "print(json.dumps([str(m.DEFAULT_GENERATOR), str(g.DEFAULT_GENERATOR), str(m.default_detector())]))")
    models, gan, detector = json.loads(run_python(code, EDGEANON_MODELS=str(tmp_path)))
    assert models == gan == str(tmp_path / "generator.onnx")
    assert detector == str(tmp_path / "detector.onnx")


def test_one_methods_tuple():
    from edgeanon import anonymize, config, defaults

    assert anonymize.METHODS is defaults.METHODS and config.METHODS is defaults.METHODS


def test_the_runtime_tests_are_collected_where_torch_is_missing():
    # torch blocked as in a device venv (importing it raises ImportError); every module of tests/runtime must load
    code = ("import sys; sys.modules['torch'] = None\n"
            "import pytest\n"
            "rc = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests/runtime'])\n"
            "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
            "sys.exit(int(rc))")
    out = run_python(code)
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ tests collected in .*", last), out[-2000:]
    assert int(last.split()[0]) > 200, last


@pytest.mark.slow
def test_pip_install_gives_a_working_cli_without_torch(tmp_path, face_image):
    """`pip install .` (not editable): the runtime's dependencies alone, the models inside the package, and
    `edgeanon anonymize` works on a real face with torch blocked and no checkout on the path."""
    # A copy of the checkout's files (pip builds in the source tree: no stale build/ from elsewhere)
    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for name in files:
        if (REPO / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, checkout / name)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(checkout)], check=True, capture_output=True, timeout=600)
    [meta] = target.glob("edgeanon-*.dist-info/METADATA")
    runtime = [line for line in meta.read_text().splitlines()
               if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not [line for line in runtime if re.search(r"torch|onnx\b|modelopt|scikit|dlib", line)], runtime
    assert "License-Expression: Apache-2.0" in meta.read_text()
    assert sorted(p.name for p in (target / "edgeanon" / "model_files").iterdir()) == \
        ["README.md", "detector.onnx", "generator.onnx", "ksame-bank.npz"]
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), face_image)
    code = ("import sys; sys.modules['torch'] = None\n"
            "import edgeanon, edgeanon.models as m\n"
            f"assert edgeanon.__file__.startswith({str(target)!r}), edgeanon.__file__\n"
            "print(m.MODELS_DIR)\n"
            "from edgeanon.cli import main\n"
            "sys.exit(main(['anonymize', 'photo.jpg', '-o', 'out', '--method', 'gan']))")
    env = {k: v for k, v in os.environ.items() if k not in ("EDGEANON_MODELS", "PYTHONPATH")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**env, "PYTHONPATH": str(target)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == str(target / "edgeanon" / "model_files")
    assert "1 face(s) in 1 frame(s)" in out.stdout and "gan 1" in out.stdout, out.stdout
    assert (tmp_path / "out" / "photo.jpg").is_file()
