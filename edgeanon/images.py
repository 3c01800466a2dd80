"""Reading images into the runtime's one format: BGR uint8, HxWx3, upright as a viewer shows them.

A photo stored sideways with an EXIF orientation tag (what phones write) is turned upright on load, so faces
are looked for, and boxes given, in the picture as people see it; outputs are written upright without the tag.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edgeanon.atomic import atomic_path
from edgeanon.config import MAX_PIXELS
from edgeanon.image_header import image_size

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm", ".ppm", ".pnm"}
__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS", "ImageError", "list_images", "load_image", "to_bgr8"]
# Keeps 16-bit and grey pictures for to_bgr8, and, unlike IMREAD_UNCHANGED, applies the EXIF orientation.
READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
# libjpeg's warnings for damaged data: it still returns a picture, partly grey or garbage, and says so only on
# the C stderr (OpenCV offers no other way to ask), so that is where they are read.
JPEG_DAMAGE = (b"Corrupt JPEG data", b"Premature end of JPEG file")


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
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})") from exc
    # The size from the header, before any pixel is decoded: a small file may claim gigapixels. The whole file
    # goes in: a JPEG's frame header may follow megabytes of metadata, a TIFF's directory may follow its pixels.
    size = image_size(data)
    if size is None:
        raise ImageError(f"{path}: not a readable image (unknown format or broken header)")
    if size[0] * size[1] > MAX_PIXELS or not (size[0] and size[1]):
        raise ImageError(f"{path}: {size[0]}x{size[1]} is larger than {MAX_PIXELS} pixels (or empty); not decoded")
    image, warnings = _decode(np.frombuffer(data, np.uint8), jpeg=data[:2] == b"\xff\xd8")
    damage = [line for line in warnings.splitlines() if line.startswith(JPEG_DAMAGE)]
    if warnings and not damage:
        sys.stderr.write(warnings.decode("utf-8", "replace"))  # not ours to judge: passed on as the library wrote it
        sys.stderr.flush()
    if damage:
        raise ImageError(f"{path}: corrupt JPEG ({damage[0].decode('ascii', 'replace').strip()}); not used")
    if image is None:
        raise ImageError(f"{path}: not a readable image")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(f"{path}: {image.shape[1]}x{image.shape[0]} is larger than {MAX_PIXELS} pixels")
    return to_bgr8(image)


def save_image(target: Path, image: np.ndarray, suffix: str, params: Sequence[int] = ()) -> None:
    """Encode `image` as `suffix` (".jpg", ".png", ...) with OpenCV's encoder `params` and write it atomically, or
    ImageError naming the file."""
    try:
        ok, data = cv2.imencode(suffix, image, list(params))
    except cv2.error:  # OpenCV has no encoder for this suffix
        ok = False
    if not ok:
        raise ImageError(f"{target}: cannot encode the image as {suffix}")
    try:
        with atomic_path(target) as tmp:
            tmp.write_bytes(data.tobytes())
    except OSError as exc:
        raise ImageError(f"{target}: cannot write ({exc.strerror})") from exc


def save_picture(target: Path, image: np.ndarray, quality: int = 90, default_suffix: str = ".jpg") -> int:
    """Write a picture a script made, as the format its suffix names (`default_suffix` when it has none; a JPEG at
    `quality`), making its folder: the script's exit status, 0, or 1 after saying why on stderr."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: {target}: cannot make its folder ({exc.strerror})", file=sys.stderr)
        return 1
    try:
        suffix = target.suffix or default_suffix
        jpeg = suffix.lower() in (".jpg", ".jpeg")
        save_image(target, image, suffix, (cv2.IMWRITE_JPEG_QUALITY, quality) if jpeg else ())
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _decode(data: np.ndarray, jpeg: bool) -> tuple[np.ndarray | None, bytes]:
    """The decoded picture and, for a JPEG, what the decoder wrote to the C stderr meanwhile."""
    if not jpeg:
        return cv2.imdecode(data, READ_FLAGS), b""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to read the warnings from
            return cv2.imdecode(data, READ_FLAGS), b""
        os.dup2(sink.fileno(), 2)
        try:
            image = cv2.imdecode(data, READ_FLAGS)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return image, sink.read()


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
