"""Leak rate, the project's core privacy metric: ground-truth faces whose pixels come out unchanged.

A face (ground-truth box clipped to the frame, both sides >= `min_size` px) is *leaked* when the
output's face region is essentially the source's: both are converted to gray and smoothed with a
Gaussian of sigma 1 px (this removes most codec noise: blocking, ringing, dither), and the mean
absolute difference over the region is below `threshold` gray levels. Any real anonymization
(blur, pixelate, fill, a generated face) changes a face region far more than that; a re-encode
does not. DEFAULT_THRESHOLD was set from measurement (bench/anonymize_bench.py, 2163 faces): on
un-anonymized re-encodes of the benchmark clip the difference is at most 2.67 (OpenCV mp4v, median
1.99) and 2.84 (imageio libx264, median 1.60), so both leak 100 %; anonymized faces sit at a median
of 20-27. 4.0 is about 1.4x the largest codec noise seen. The metric is per face instance (face x
frame); `identity_leak_rate` counts the people exposed in at least one frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgeanon.images import ImageError, load_image
from edgeanon.video import VideoError, VideoReader

log = logging.getLogger(__name__)

DEFAULT_MIN_SIZE = 16
DEFAULT_THRESHOLD = 4.0  # gray levels of mean abs difference after smoothing (see module docstring)
SMOOTH_SIGMA = 1.0


class LeakError(ValueError):
    """The inputs cannot be compared (missing, mismatched, malformed truth); names the problem."""


@dataclass
class LeakResult:
    faces: int = 0  # face instances (face x frame) that count
    leaked: int = 0
    identities: set = field(default_factory=set)
    leaked_identities: set = field(default_factory=set)
    differences: list = field(default_factory=list)  # per counted face: mean abs difference

    @property
    def rate(self) -> float:
        return self.leaked / self.faces if self.faces else 0.0

    @property
    def identity_rate(self) -> float:
        return len(self.leaked_identities) / len(self.identities) if self.identities else 0.0

    def to_json(self) -> dict:
        d = np.asarray(self.differences, np.float64)
        spread = {p: round(float(np.percentile(d, p)), 2) for p in (0, 1, 5, 50, 95, 99, 100)} if d.size else {}
        return {
            "faces": self.faces, "leaked": self.leaked, "leak_rate": round(self.rate, 4),
            "identities": len(self.identities), "leaked_identities": len(self.leaked_identities),
            "identity_leak_rate": round(self.identity_rate, 4),
            "difference_percentiles": spread,
        }


def _gray(image: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return cv2.GaussianBlur(gray, (0, 0), SMOOTH_SIGMA)


def face_differences(output: np.ndarray, source: np.ndarray, boxes: list, min_size: int = DEFAULT_MIN_SIZE
                     ) -> list[tuple[int, float]]:
    """(index into boxes, mean abs gray difference) for every box that counts (clipped sides >= min_size)."""
    if output.shape != source.shape:
        raise LeakError(f"output frame is {output.shape[1]}x{output.shape[0]}, "
                        f"source is {source.shape[1]}x{source.shape[0]}")
    h, w = source.shape[:2]
    out_g, src_g = None, None
    result = []
    for i, box in enumerate(boxes):
        x1, y1 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
        x2, y2 = min(w, int(round(box[2]))), min(h, int(round(box[3])))
        if x2 - x1 < min_size or y2 - y1 < min_size:
            continue
        if out_g is None:
            out_g, src_g = _gray(output), _gray(source)
        result.append((i, float(np.abs(out_g[y1:y2, x1:x2] - src_g[y1:y2, x1:x2]).mean())))
    return result


def _frames(path: Path, names: list[str] | None) -> Iterator[tuple[str, np.ndarray]]:
    """(key, image) pairs: frame indices as strings for a video, file names for a folder."""
    if path.is_dir():
        for name in names or []:
            file = path / name
            if not file.is_file():
                raise LeakError(f"{file}: missing (the truth names it)")
            yield name, load_image(file)
        return
    with VideoReader(path) as reader:
        for frame in reader:
            yield str(frame.index), frame.image
        if not reader.complete:
            raise LeakError(f"{path}: truncated: decoded {reader.frames_read} of {reader.info.frame_count} frames")


def load_truth(path: Path) -> tuple[dict[str, list[dict]], bool]:
    """Truth as {frame key: [{"id", "box"}]} and whether it is per-frame video truth.

    Accepts the clip format of bench/make_clip.py ({"frames": [{"index", "faces": [{"id", "box"}]}]})
    or the image format {file name: [[x1, y1, x2, y2], ...]}.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise LeakError(f"{path}: not readable JSON ({exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("frames"), list):
        truth = {str(f["index"]): [{"id": face["id"], "box": face["box"]} for face in f["faces"]]
                 for f in data["frames"]}
        return truth, True
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return {name: [{"id": f"{name}#{j}", "box": b} for j, b in enumerate(boxes)]
                for name, boxes in data.items()}, False
    raise LeakError(f"{path}: expected {{'frames': [...]}} or {{file name: [[x1, y1, x2, y2], ...]}}")


def leak_rate(output: Path, source: Path, truth_path: Path, min_size: int = DEFAULT_MIN_SIZE,
              threshold: float = DEFAULT_THRESHOLD) -> LeakResult:
    """Compare an anonymized output (video or folder) with its source against ground-truth boxes."""
    truth, _ = load_truth(truth_path)
    names = sorted(truth)
    result = LeakResult()
    seen = 0
    for (key, out_img), (src_key, src_img) in zip(_frames(Path(output), names), _frames(Path(source), names),
                                                   strict=False):
        if key != src_key:
            raise LeakError(f"{output}: frame {key} does not line up with source frame {src_key}")
        seen += 1
        faces = truth.get(key, [])
        for i, diff in face_differences(out_img, src_img, [f["box"] for f in faces], min_size):
            result.faces += 1
            result.identities.add(faces[i]["id"])
            result.differences.append(diff)
            if diff < threshold:
                result.leaked += 1
                result.leaked_identities.add(faces[i]["id"])
    if seen < len(truth):
        raise LeakError(f"{output}: only {seen} frames/images could be compared, the truth has {len(truth)}")
    return result


def run(args: argparse.Namespace) -> int:
    try:
        result = leak_rate(args.output, args.source, args.truth, args.min_size, args.threshold)
    except (LeakError, VideoError, ImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = result.to_json()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"leak rate {report['leak_rate']:.2%}: {result.leaked} of {result.faces} faces (>= {args.min_size} px) "
          f"unchanged; {report['leaked_identities']} of {report['identities']} people leaked in at least one frame")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "leak", help="leak rate: ground-truth faces left unchanged in an anonymized output",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--output", type=Path, required=True, help="anonymized video, or folder of images")
    p.add_argument("--source", type=Path, required=True, help="the original video, or folder of images")
    p.add_argument("--truth", type=Path, required=True,
                   help="ground truth: bench/make_clip.py's per-frame JSON, or {file name: [[x1,y1,x2,y2],...]}")
    p.add_argument("--min-size", type=int, default=DEFAULT_MIN_SIZE, help="smallest face side that counts (px)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="mean abs gray difference below which a face counts as unchanged")
    p.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    p.set_defaults(func=run)
