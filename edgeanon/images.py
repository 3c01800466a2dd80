"""Reading images into the runtime's one format: BGR uint8, HxWx3, whatever the file holds."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgeanon.image_header import image_size

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm", ".ppm", ".pnm"}
MAX_PIXELS = 8192 * 8192


class ImageError(ValueError):
    """An input image cannot be used; the message names the file and the reason."""


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Grayscale, BGRA and 16-bit images become BGR uint8; BGR uint8 passes through untouched."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as BGR uint8, or raise ImageError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    data = np.fromfile(str(path), dtype=np.uint8)
    # The size from the header, before any pixel is decoded: a small file may claim gigapixels.
    size = image_size(data[:1 << 20].tobytes())
    if size is None:
        raise ImageError(f"{path}: not a readable image (unknown format or broken header)")
    if size[0] * size[1] > MAX_PIXELS or not (size[0] and size[1]):
        raise ImageError(f"{path}: {size[0]}x{size[1]} is larger than {MAX_PIXELS} pixels (or empty); not decoded")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"{path}: not a readable image")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]} is larger than {MAX_PIXELS} pixels")
    return to_bgr8(image)


def list_images(inputs: list[str | Path]) -> list[Path]:
    """Expand folders into their image files (sorted); files are kept as given, in order."""
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            paths.append(item)
    return paths
