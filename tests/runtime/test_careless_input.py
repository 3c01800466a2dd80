"""Careless input to `edgeanon detect` and `edgeanon anonymize`, run as real processes on a real face.

Each mistake gets one line naming what is wrong and a non-zero exit, never a traceback; what cannot be
written is found before the work; inputs never overwrite each other; folders are searched recursively only
when asked, and say what they skipped; damaged and unusual-but-valid images are told apart.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeanon.images import load_image

REPO = Path(__file__).resolve().parents[2]
FACE = (181, 58, 270, 178)  # the astronaut's face (x1, y1, x2, y2)
UNWRITABLE = Path("/proc")  # a folder nobody, root included, can create a file in


def edgeanon(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeanon", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def refused(result: subprocess.CompletedProcess, text: str, code: int = 2) -> None:
    """Exit `code`, and the error is one line that says `text`; no traceback."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if text in line]
    assert len(lines) == 1, result.stderr


def face_diff(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1, x2, y2 = FACE
    return float(np.abs(a[y1:y2, x1:x2].astype(int) - b[y1:y2, x1:x2]).mean())


@pytest.fixture
def photo(tmp_path, face_image) -> Path:
    path = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(path), face_image)
    return path


# --- where the output goes -------------------------------------------------------------------------------------

def test_detect_draw_onto_a_file_or_proc_or_an_unwritable_folder(photo, tmp_path, detector_model):
    existing = tmp_path / "existing.txt"
    existing.write_text("keep me")
    refused(edgeanon("detect", photo, "--draw", existing, "--detector-model", detector_model),
            f"--draw {existing}: is a file")
    assert existing.read_text() == "keep me"
    refused(edgeanon("detect", photo, "--draw", "/proc/x", "--detector-model", detector_model), "--draw /proc/x")
    refused(edgeanon("detect", photo, "--draw", UNWRITABLE, "--detector-model", detector_model),
            "--draw /proc: cannot write in /proc")


def test_report_and_json_that_cannot_be_written_are_refused_before_the_work(photo, tmp_path, detector_model):
    out = tmp_path / "out"
    result = edgeanon("anonymize", photo, "-o", out, "--method", "blur", "--report", UNWRITABLE / "r.json",
                      "--detector-model", detector_model)
    refused(result, "--report /proc/r.json: cannot write in /proc")
    assert not out.exists() or not any(out.iterdir()), "the work was done before the report was found unwritable"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    refused(edgeanon("anonymize", photo, "-o", out, "--report", blocker / "r.json"), "is not a folder")
    refused(edgeanon("detect", photo, "--json", UNWRITABLE / "faces.json", "--detector-model", detector_model),
            "--json /proc/faces.json: cannot write in /proc")


# --- numbers ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, text", [
    (("detect", "--nms-iou", "nan"), "--nms-iou must be a finite number"),
    (("detect", "--input-scale", "inf"), "--input-scale must be a finite number"),
    (("detect", "--nms-iou", "5"), "NMS overlap must be in (0, 1]"),
    (("anonymize", "-o", "OUT", "--hold", "nan"), "--hold must be a finite number"),
    (("anonymize", "-o", "OUT", "--threshold=-inf"), "--threshold must be a finite number"),
    (("anonymize", "-o", "OUT", "--threads", "100000"), "--threads 100000: must be between 0 and 256"),
], ids=["nms-nan", "scale-inf", "nms-5", "hold-nan", "threshold-inf", "threads"])
def test_numbers_out_of_bounds_are_one_line(photo, tmp_path, detector_model, args, text):
    command, *rest = args
    rest = [str(tmp_path / "out") if a == "OUT" else a for a in rest]
    refused(edgeanon(command, photo, *rest, "--detector-model", detector_model), text)


# --- which files, under which names ----------------------------------------------------------------------------

def test_same_file_name_from_two_folders_is_refused(tmp_path, face_image, detector_model):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "x.jpg"), face_image)
    out = tmp_path / "out"
    result = edgeanon("anonymize", tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.jpg", "-o", out,
                      "--method", "blur", "--detector-model", detector_model)
    refused(result, "would both be written as 'x.jpg'")
    assert "a/x.jpg" in result.stderr and "b/x.jpg" in result.stderr
    assert not out.exists() or not any(out.iterdir())
    faces = tmp_path / "faces.json"
    refused(edgeanon("detect", tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.jpg", "--json", faces,
                     "--detector-model", detector_model), "would both be written as 'x.jpg'")
    assert not faces.exists()


def test_folders_are_searched_recursively_only_when_asked_and_keep_their_paths(tmp_path, face_image,
                                                                               detector_model):
    top = tmp_path / "trip"
    (top / "day2").mkdir(parents=True)
    cv2.imwrite(str(top / "x.jpg"), face_image)
    cv2.imwrite(str(top / "day2" / "x.jpg"), face_image[:, ::-1])  # the same name, another picture
    out = tmp_path / "out"
    result = edgeanon("anonymize", top, "-o", out, "--method", "blur", "--detector-model", detector_model)
    assert result.returncode == 0, result.stderr
    assert "trip: 1 file(s) in its subfolders skipped (use --recursive" in result.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == ["x.jpg"]

    out = tmp_path / "out-r"
    result = edgeanon("anonymize", top, "-o", out, "--recursive", "--method", "blur",
                      "--detector-model", detector_model)
    assert result.returncode == 0, result.stderr
    assert "skipped" not in result.stderr
    assert face_diff(cv2.imread(str(out / "x.jpg")), face_image) > 8
    mirrored = np.ascontiguousarray(face_image[:, ::-1])
    x1, y1, x2, y2 = FACE
    flipped_face = (512 - x2, y1, 512 - x1, y2)
    nested = cv2.imread(str(out / "day2" / "x.jpg"))
    a, b = nested[flipped_face[1]:flipped_face[3], flipped_face[0]:flipped_face[2]], \
        mirrored[flipped_face[1]:flipped_face[3], flipped_face[0]:flipped_face[2]]
    assert float(np.abs(a.astype(int) - b).mean()) > 8, "the nested picture was not anonymized"

    # detect keys by the same names, and anonymize --boxes reads its output as it is
    faces = tmp_path / "faces.json"
    result = edgeanon("detect", top, "--recursive", "--json", faces, "--detector-model", detector_model)
    assert result.returncode == 0, result.stderr
    found = json.loads(faces.read_text())
    assert set(found) == {"x.jpg", "day2/x.jpg"} and all(found.values())
    out = tmp_path / "out-boxes"
    result = edgeanon("anonymize", top, "-o", out, "--recursive", "--boxes", faces, "--method", "fill")
    assert result.returncode == 0, result.stderr
    assert face_diff(cv2.imread(str(out / "x.jpg")), face_image) > 40
    nested = cv2.imread(str(out / "day2" / "x.jpg"))
    assert float(np.abs(nested[y1:y2, 512 - x2:512 - x1].astype(int) - mirrored[y1:y2, 512 - x2:512 - x1]).mean()) > 40


# --- what the summary says -------------------------------------------------------------------------------------

def test_failure_summary_fits_the_number_of_inputs(tmp_path, photo, detector_model):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    result = edgeanon("anonymize", broken, "-o", tmp_path / "o1", "--method", "blur",
                      "--detector-model", detector_model)
    refused(result, "broken.png: not a readable image", code=1)
    assert "the others" not in result.stderr and "input(s) failed" not in result.stderr
    result = edgeanon("anonymize", broken, photo, "-o", tmp_path / "o2", "--method", "blur",
                      "--detector-model", detector_model)
    assert result.returncode == 1
    assert "1 of 2 inputs failed; the other 1 were written to" in result.stderr
    assert (tmp_path / "o2" / "astronaut.jpg").is_file()


# --- damaged and unusual images --------------------------------------------------------------------------------

def corrupt_jpeg(path: Path, face_image: np.ndarray) -> Path:
    """A JPEG that lost 5,000 bytes from the middle of its picture data (a damaged copy): libjpeg decodes it with a
    warning, its lower half garbage."""
    data = cv2.imencode(".jpg", face_image)[1].tobytes()
    half = len(data) // 2
    path.write_bytes(data[:half] + data[half + 5000:])
    return path


def test_a_corrupt_jpeg_is_one_line_naming_it_and_a_failure(tmp_path, face_image, detector_model):
    bad = corrupt_jpeg(tmp_path / "damaged.jpg", face_image)
    out = tmp_path / "out"
    for result in (edgeanon("anonymize", bad, "-o", out, "--method", "blur", "--detector-model", detector_model),
                   edgeanon("detect", bad, "--detector-model", detector_model)):
        refused(result, "damaged.jpg: corrupt JPEG (Corrupt JPEG data", code=1)
        assert all("damaged.jpg" in line for line in result.stderr.splitlines() if "JPEG" in line), result.stderr
    assert not (out / "damaged.jpg").exists()


def test_a_large_tiff_and_a_jpeg_with_megabytes_of_metadata_are_read(tmp_path, face_image, detector_model):
    big = cv2.resize(face_image, (1200, 1200))
    tiff = tmp_path / "large.tiff"
    cv2.imwrite(str(tiff), big)
    data = tiff.read_bytes()
    assert struct.unpack("<I", data[4:8])[0] > 1 << 20  # its directory lies past the first MiB
    # a JPEG whose frame header follows 1.1 MiB of XMP extension segments (what some cameras and editors write)
    jpeg = cv2.imencode(".jpg", face_image)[1].tobytes()
    payload = b"http://ns.adobe.com/xmp/extension/\x00" + b"x" * 65000
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    meta = tmp_path / "metadata.jpg"
    meta.write_bytes(jpeg[:2] + segment * 18 + jpeg[2:])
    assert len(segment) * 18 > 1 << 20
    assert load_image(tiff).shape == big.shape
    assert load_image(meta).shape == face_image.shape
    faces = tmp_path / "faces.json"
    result = edgeanon("detect", tiff, meta, "--json", faces, "--detector-model", detector_model)
    assert result.returncode == 0, result.stderr
    found = json.loads(faces.read_text())
    assert len(found["large.tiff"]) >= 1 and len(found["metadata.jpg"]) >= 1
