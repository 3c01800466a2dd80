"""A deterministic 1280x720 evaluation clip from WIDER FACE images, with per-frame face boxes.

Each scene is one image under a moving camera (a zoom in or out and a pan), and scenes follow each other
with a hard cut. The truth is {"width", "height", "fps", "images", "frames": [{"index", "faces":
[{"id", "box": [x1, y1, x2, y2]}]}]}, boxes in clip pixels (they may reach outside the frame).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeanon.video import VideoWriter

# H.264 quality of the clip: high, like a camera's own recording, so what a re-encode loses shows.
SOURCE_CRF = 12


def pick_images(boxes: dict[str, list], count: int, seed: int, min_faces: int, min_face_px: float,
                names_filter: Callable[[str], bool] | None = None, min_total: int = 0) -> list[str]:
    """Images with at least `min_faces` faces of `min_face_px` height (and `min_total` faces of any size: a
    crowd), sampled deterministically."""
    good = sorted(name for name, faces in boxes.items()
                  if sum(1 for b in faces if b[3] - b[1] >= min_face_px) >= min_faces and len(faces) >= min_total
                  and (names_filter is None or names_filter(name)))
    if len(good) < count:
        raise ValueError(f"only {len(good)} images have {min_faces} faces of {min_face_px}px or more "
                         f"and {min_total} faces in all")
    return random.Random(seed).sample(good, count)


def camera_path(t: float, scene: int) -> tuple[float, float, float]:
    """(zoom, pan_x, pan_y) at t in [0, 1]: alternate zoom in/out and pan directions per scene."""
    zoom = 1.0 + 0.5 * (t if scene % 2 == 0 else 1.0 - t)
    pan_x = t if scene % 2 == 0 else 1.0 - t
    pan_y = 0.5 + 0.4 * (t - 0.5) * (1 if scene % 3 else -1)
    return zoom, pan_x, pan_y


def camera_view(image: np.ndarray, boxes: np.ndarray, t: float, scene: int,
                size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The frame the moving camera sees of `image` at t in [0, 1] (camera_path), and `boxes` (n, 4) moved with it."""
    width, height = size
    ih, iw = image.shape[:2]
    zoom, px, py = camera_path(t, scene)
    s = max(width / iw, height / ih) * zoom
    ox, oy = (iw * s - width) * px, (ih * s - height) * py
    m = np.array([[s, 0, -ox], [0, s, -oy]], np.float64)
    frame = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return frame, np.asarray(boxes, np.float64).reshape(-1, 4) * s - np.array([ox, oy, ox, oy])


def in_view(boxes: np.ndarray, size: tuple[int, int], first_id: int) -> list[dict]:
    """{"id", "box"} of the boxes that reach into a frame of `size` (ids first_id + their index)."""
    width, height = size
    return [{"id": first_id + j, "box": [round(float(v), 2) for v in b]} for j, b in enumerate(boxes)
            if b[2] > 0 and b[3] > 0 and b[0] < width and b[1] < height]


def make_clip(data: Path, out: Path, scenes: int, frames_per_scene: int, fps: float, seed: int,
              size: tuple[int, int] = (1280, 720), names_filter: Callable[[str], bool] | None = None,
              crf: int = SOURCE_CRF, min_total: int = 0) -> dict:
    """Write the clip and its truth (`out` with suffix .truth.json); returns the truth. With `min_total`,
    every scene is an image with at least that many labelled faces (a crowd clip)."""
    boxes = json.loads((data / "wider-train" / "boxes.json").read_text())
    names = pick_images(boxes, scenes, seed, min_faces=4, min_face_px=20, names_filter=names_filter,
                        min_total=min_total)
    width, height = size
    truth = {"width": width, "height": height, "fps": fps, "images": names, "frames": []}
    out.parent.mkdir(parents=True, exist_ok=True)
    index = 0
    with VideoWriter(out, fps, size, crf=crf) as writer, \
            tqdm(total=scenes * frames_per_scene, desc="clip", unit="f") as bar:
        for scene, name in enumerate(names):
            image = cv2.imread(str(data / "wider-train" / name))
            for k in range(frames_per_scene):
                frame, moved = camera_view(image, np.array(boxes[name]), k / max(1, frames_per_scene - 1), scene,
                                           size)
                truth["frames"].append({"index": index, "faces": in_view(moved, size, scene * 10000)})
                writer.write(frame)
                index += 1
                bar.update()
    truth_path = out.with_suffix(".truth.json")
    truth_path.write_text(json.dumps(truth))
    return truth
