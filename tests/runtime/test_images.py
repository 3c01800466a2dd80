"""Image loading: sizes read from the header before any decode, so a decompression bomb is refused unread."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeanon.image_header import image_size
from edgeanon.images import MAX_PIXELS, ImageError, load_image, save_picture

FORMATS = (".png", ".jpg", ".bmp", ".webp", ".tiff", ".ppm", ".pgm", ".jp2")


@pytest.mark.parametrize("ext", FORMATS)
def test_header_size_matches_the_decoded_image(ext, face_image):
    image = face_image[:301, :203]
    ok, encoded = cv2.imencode(ext, image[..., 0] if ext == ".pgm" else image)
    assert ok
    assert image_size(encoded.tobytes()) == (203, 301)
    assert cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).shape[:2] == (301, 203)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR (valid CRC) claims width x height RGB, with a tiny all-zero first IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 4096)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
            + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat)))


def patched(ext: str, width: int, height: int, face_image: np.ndarray) -> bytes:
    """A real small file of this format, its header edited to claim width x height."""
    data = bytearray(cv2.imencode(ext, face_image[:64, :64])[1].tobytes())
    if ext == ".jpg":
        at = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
        data[at + 5:at + 9] = struct.pack(">HH", height, width)
    elif ext == ".bmp":
        data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


@pytest.mark.parametrize("make", [
    lambda img: png_header(40_000, 40_000),
    lambda img: png_header(9_000, 9_000),
    lambda img: patched(".jpg", 65_000, 65_000, img),
    lambda img: patched(".bmp", 30_000, 30_000, img),
], ids=["png-1.6G", "png-81M", "jpeg-4.2G", "bmp-900M"])
def test_oversized_header_is_refused_before_decoding(tmp_path, face_image, make):
    path = tmp_path / "bomb.img"
    path.write_bytes(make(face_image))
    width, height = image_size(path.read_bytes())
    assert width * height > MAX_PIXELS
    with pytest.raises(ImageError) as err:
        load_image(path)
    message = str(err.value)
    assert f"{width}x{height} is larger than {MAX_PIXELS} pixels" in message and "not decoded" in message


def test_unknown_or_broken_headers_are_refused(tmp_path, face_image):
    for name, data in (("notes.png", b"just some text, not an image at all"),
                       ("cut.png", png_header(10, 10)[:20]),
                       ("cut.jpg", cv2.imencode(".jpg", face_image)[1].tobytes()[:40])):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ImageError, match=f"{name}: not a readable image"):
            load_image(path)


def test_normal_images_still_load(tmp_path, face_image):
    for ext in (".png", ".jpg"):
        path = tmp_path / f"astronaut{ext}"
        cv2.imwrite(str(path), face_image)
        image = load_image(Path(path))
        assert image.shape == face_image.shape and image.dtype == np.uint8


def test_a_scripts_picture_is_written_with_its_folder_or_the_failure_said(tmp_path, face_image, capsys):
    target = tmp_path / "new" / "folder" / "grid"
    assert save_picture(target, face_image, default_suffix=".png") == 0
    assert target.exists() and np.array_equal(cv2.imread(str(target)), face_image)  # PNG: lossless
    jpeg = tmp_path / "grid.jpg"
    assert save_picture(jpeg, face_image, quality=40) == 0
    assert load_image(jpeg).shape == face_image.shape and jpeg.stat().st_size < target.stat().st_size
    (tmp_path / "file").write_text("")
    assert save_picture(tmp_path / "file" / "grid.jpg", face_image) == 1  # its folder would be inside a file
    assert "cannot make its folder" in capsys.readouterr().err
    assert save_picture(tmp_path / "grid.nosuchformat", face_image) == 1
    assert "cannot encode" in capsys.readouterr().err
