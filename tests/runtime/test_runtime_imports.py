"""The runtime's import boundaries, checked in a fresh interpreter: no torch, no host toolkit, a leaf config."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

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
