"""`make demo`: detect faces in a sample image that ships with scikit-image and show them."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2

from edgeanon.cli import main as cli_main


def main() -> int:
    from skimage import data

    out = Path(tempfile.mkdtemp(prefix="edgeanon-demo-"))
    sample = out / "astronaut.jpg"
    cv2.imwrite(str(sample), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    code = cli_main(["detect", str(sample), "--json", str(out / "faces.json"), "--draw", str(out)])
    print((out / "faces.json").read_text())
    print(f"faces drawn in {out / 'astronaut.faces.jpg'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
