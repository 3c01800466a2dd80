"""`edgeanon anonymize --mask-scale` is bounded like the config's model.mask_scale: [1, 3]."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scale", ["0.2", "0.99", "3.5", "nan"])
def test_mask_scale_outside_the_config_bounds_is_refused(tmp_path, face_image, scale):
    """0.2 would leave the eyes uncovered: refused in one line, exit 2, nothing written."""
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), face_image)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "edgeanon", "anonymize", str(image), "-o", str(out),
                             "--method", "blur", "--mask-scale", scale],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 2, result.stdout + result.stderr
    expected = "--mask-scale must be a finite number" if scale == "nan" else "--mask-scale must be in [1, 3]"
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() or not any(out.iterdir()), "nothing written"
