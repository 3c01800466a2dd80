"""The shared data sets as files: wider-train with its boxes, the UTKFace crops, and our detector's faces on them.

The data lives outside the repository (`--data`, $EDGEANON_DATA or ../shared/data: export.paths.shared_data_dir);
which file belongs to which split is export.splits.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeanon.detector import FaceDetector
from edgeanon.image_header import image_size
from export.splits import ALL, PLATES_OI_FOLDERS, check, in_split

UTK_ZIP = "utkface-crops.zip"
WIDER = "wider-train"
PLATES_OI = "plates-oi"
PLATE_CLASS = 0  # class 1 is a vehicle
CACHE_DIR = Path(".cache")
UTK_PAD = 80  # UTK crops are tight: pad them so the detector sees the whole face


def load_wider(data_dir: Path, limit: int | None = None, split: str = ALL) -> list[tuple[Path, np.ndarray]]:
    """(image path, boxes (N, 4) x1y1x2y2) of wider-train, or of one of its halves (export.splits), sorted by
    name, the first `limit` when given; raises FileNotFoundError clearly."""
    folder = Path(data_dir) / WIDER
    labels = folder / "boxes.json"
    if not labels.is_file():
        raise FileNotFoundError(f"{labels}: not found (pass --data pointing at the shared data folder)")
    boxes = json.loads(labels.read_text())
    items = [(folder / name, np.asarray(b, np.float32).reshape(-1, 4)) for name, b in sorted(boxes.items())
             if in_split(name, split)]
    items = [item for item in items if item[0].is_file()]
    return items[:limit] if limit else items


def load_plates_oi(data_dir: Path, split: str = ALL) -> list[tuple[Path, np.ndarray]]:
    """(image, plate boxes (n, 4) x1y1x2y2 in pixels) of plates-oi's folders of a split (export.splits), sorted by
    name; a label is a polygon, its bounding box the plate. Raises FileNotFoundError clearly."""
    check(split, tuple(PLATES_OI_FOLDERS))
    root = Path(data_dir) / PLATES_OI
    if not (root / "test" / "images").is_dir():
        raise FileNotFoundError(f"{root}: plates-oi not found (pass --data pointing at the shared data folder)")
    items = []
    for folder in PLATES_OI_FOLDERS[split]:
        for image in sorted((root / folder / "images").glob("*.jpg")):
            label = root / folder / "labels" / f"{image.stem}.txt"
            w, h = image_size(image.read_bytes()) or (0, 0)
            boxes = []
            for line in label.read_text().splitlines() if label.is_file() else []:
                values = line.split()
                if not values or int(values[0]) != PLATE_CLASS:
                    continue
                pts = np.asarray(values[1:], np.float64).reshape(-1, 2) * [w, h]
                boxes.append([*pts.min(0), *pts.max(0)])
            items.append((image, np.asarray(boxes, np.float32).reshape(-1, 4)))
    return items


def _file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


@dataclass
class Face:
    box: np.ndarray  # (4,) image pixels
    score: float
    landmarks: np.ndarray  # (5, 2) image pixels


def cached_detections(paths: dict[str, object], read, detector_path: Path, tag: str,
                      cache_dir: Path = CACHE_DIR) -> dict[str, list[Face]]:
    """Our detector's faces for each named image, computed once per (image set, detector file) and cached."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = cache_dir / f"detections-{tag}-{_file_digest(Path(detector_path))}.json"
    if cache.is_file():
        raw = json.loads(cache.read_text())
        if set(raw) >= set(paths):
            return {k: [Face(np.array(f["box"], np.float32), f["score"], np.array(f["landmarks"], np.float32))
                        for f in raw[k]] for k in paths}
    detector = FaceDetector.from_path(detector_path)
    out: dict[str, list[Face]] = {}
    for name, src in tqdm(paths.items(), desc=f"detect {tag}", unit="img"):
        image = read(src)
        out[name] = [Face(d.box, d.score, d.landmarks) for d in detector.detect(image) if d.landmarks is not None]
    cache.write_text(json.dumps({k: [{"box": f.box.tolist(), "score": f.score, "landmarks": f.landmarks.tolist()}
                                     for f in v] for k, v in out.items()}))
    return out


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("undecodable image")
    return image


def utk_detections(data_dir: Path, detector_path: Path) -> tuple[zipfile.ZipFile, dict[str, list[Face]]]:
    """Faces in the UTKFace crops (coordinates of the crop padded by UTK_PAD on each side)."""
    zf = zipfile.ZipFile(data_dir / UTK_ZIP)
    names = {n: n for n in sorted(zf.namelist()) if n.lower().endswith(".jpg")}

    def read(name: str) -> np.ndarray:
        return cv2.copyMakeBorder(decode(zf.read(name)), *[UTK_PAD] * 4, cv2.BORDER_CONSTANT, value=0)

    return zf, cached_detections(names, read, detector_path, "utk")


def wider_detections(data_dir: Path, detector_path: Path) -> dict[str, list[Face]]:
    paths = {p.name: p for p in sorted((data_dir / WIDER).glob("*.jpg"))}
    return cached_detections(paths, lambda p: cv2.imread(str(p)), detector_path, "wider")


