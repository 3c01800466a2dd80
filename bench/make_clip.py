"""Build the deterministic panning/zooming 1280x720 clip (export/eval/clip.py) with per-frame face boxes.

    .venv/bin/python -m bench.make_clip --out out/bench/clip.mp4
writes the clip and `clip.truth.json` beside it: {"width", "height", "fps", "frames": [{"index",
"faces": [{"id", "box": [x1, y1, x2, y2]}]}]}, boxes in clip pixels (may reach outside the frame).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from export.eval.clip import make_clip

REPO = Path(__file__).resolve().parent.parent


def default_data() -> Path:
    return Path(os.environ.get("EDGEANON_DATA", REPO.parent / "shared" / "data"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data(), help="shared data folder (has wider-train/)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench" / "clip.mp4", help="clip to write")
    parser.add_argument("--scenes", type=int, default=4, help="number of source images (one camera move each)")
    parser.add_argument("--frames-per-scene", type=int, default=40)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.data / "wider-train" / "boxes.json").is_file():
        print(f"error: {args.data}/wider-train/boxes.json not found (set EDGEANON_DATA or --data)", file=sys.stderr)
        return 2
    truth = make_clip(args.data, args.out, args.scenes, args.frames_per_scene, args.fps, args.seed)
    faces = sum(len(f["faces"]) for f in truth["frames"])
    print(f"{args.out}: {len(truth['frames'])} frames, {faces} face boxes -> {args.out.with_suffix('.truth.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
