"""Build a deterministic panning/zooming 1280x720 clip from WIDER FACE images, with per-frame face boxes.

    .venv/bin/python -m bench.make_clip --out out/bench/clip.mp4
writes the clip and `clip.truth.json` beside it: {"width", "height", "fps", "frames": [{"index",
"faces": [{"id", "box": [x1, y1, x2, y2]}]}]}, boxes in clip pixels (may reach outside the frame).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeanon.video import VideoWriter

REPO = Path(__file__).resolve().parent.parent

# H.264 quality of the clip: high, like a camera's own recording, so what a re-encode loses shows.
SOURCE_CRF = 12


def default_data() -> Path:
    return Path(os.environ.get("EDGEANON_DATA", REPO.parent / "shared" / "data"))


def pick_images(boxes: dict[str, list], count: int, seed: int, min_faces: int, min_face_px: float) -> list[str]:
    """Images with at least `min_faces` faces of `min_face_px` height, sampled deterministically."""
    good = sorted(name for name, faces in boxes.items()
                  if sum(1 for b in faces if b[3] - b[1] >= min_face_px) >= min_faces)
    if len(good) < count:
        raise SystemExit(f"only {len(good)} images have {min_faces} faces of {min_face_px}px or more")
    return random.Random(seed).sample(good, count)


def camera_path(t: float, scene: int) -> tuple[float, float, float]:
    """(zoom, pan_x, pan_y) at t in [0, 1]: alternate zoom in/out and pan directions per scene."""
    zoom = 1.0 + 0.5 * (t if scene % 2 == 0 else 1.0 - t)
    pan_x = t if scene % 2 == 0 else 1.0 - t
    pan_y = 0.5 + 0.4 * (t - 0.5) * (1 if scene % 3 else -1)
    return zoom, pan_x, pan_y


def make_clip(data: Path, out: Path, scenes: int, frames_per_scene: int, fps: float, seed: int,
              size: tuple[int, int] = (1280, 720), crf: int = SOURCE_CRF) -> dict:
    boxes = json.loads((data / "wider-train" / "boxes.json").read_text())
    names = pick_images(boxes, scenes, seed, min_faces=4, min_face_px=20)
    width, height = size
    truth = {"width": width, "height": height, "fps": fps, "images": names, "frames": []}
    out.parent.mkdir(parents=True, exist_ok=True)
    index = 0
    with VideoWriter(out, fps, size, crf=crf) as writer, \
            tqdm(total=scenes * frames_per_scene, desc="clip", unit="f") as bar:
        for scene, name in enumerate(names):
            image = cv2.imread(str(data / "wider-train" / name))
            ih, iw = image.shape[:2]
            faces = np.array(boxes[name], np.float64).reshape(-1, 4)
            base = max(width / iw, height / ih)
            for k in range(frames_per_scene):
                zoom, px, py = camera_path(k / max(1, frames_per_scene - 1), scene)
                s = base * zoom
                ox, oy = (iw * s - width) * px, (ih * s - height) * py
                m = np.array([[s, 0, -ox], [0, s, -oy]], np.float64)
                frame = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                moved = faces * s - np.array([ox, oy, ox, oy])
                visible = [{"id": scene * 10000 + j, "box": [round(float(v), 2) for v in b]}
                           for j, b in enumerate(moved)
                           if b[2] > 0 and b[3] > 0 and b[0] < width and b[1] < height]
                truth["frames"].append({"index": index, "faces": visible})
                writer.write(frame)
                index += 1
                bar.update()
    truth_path = out.with_suffix(".truth.json")
    truth_path.write_text(json.dumps(truth))
    return truth


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
