"""Licence plates as a second kind of region: a real photo's plate is found and covered, faults fail closed.

Needs models/plates.onnx (`python -m export plates --from fastanpr`: AGPL-3.0 weights, never committed) and, for the
real photos, plates-oi in the shared data; each test skips with the reason when either is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.plates import PlateCover, plate_colours, render_plate
from edgeanon.commands.doctor import FAIL, OK
from edgeanon.commands.doctor import check_plates as doctor_plates
from edgeanon.commands.engines import models_of
from edgeanon.config import ConfigError, ModelConfig, PlatesConfig, config_from_dict, model_config
from edgeanon.engines import EngineSettings, compute_profiles, plan_build, source_onnx
from edgeanon.frames import Detection, Frame
from edgeanon.inference.errors import ModelError
from edgeanon.models import DEFAULT_PLATES
from edgeanon.plates import PlateDetector, PlateFault
from edgeanon.redactor import Redactor
from edgeanon.selftest import check_plates, plate_selftest_image
from export.datasets import load_plates_oi
from export.eval.leak_metric import LEAK_SSIM, face_scores
from export.paths import REPO_ROOT, shared_data_dir

PLATES = DEFAULT_PLATES
NO_MODEL = ("models/plates.onnx is absent: make it with `python -m export plates --from fastanpr` (AGPL-3.0 weights, "
            "never committed)")


@pytest.fixture(scope="module")
def plates_model(detector_model) -> Path:
    """models/plates.onnx (the face detector, which every chain needs, made first when missing)."""
    if not PLATES.is_file():
        pytest.skip(NO_MODEL)
    return PLATES


@pytest.fixture(scope="module")
def plate_photo() -> tuple[Path, np.ndarray]:
    """The first plates-oi holdout photo (its test folder, by name) with a plate of 40 px or more, and that box."""
    data = shared_data_dir()
    if not (data / "plates-oi" / "test" / "images").is_dir():
        pytest.skip(f"plates-oi not found in {data} (set EDGEANON_DATA or place ../shared/data beside the repo)")
    for path, boxes in load_plates_oi(data, "holdout"):
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) if len(boxes) else []
        if len(boxes) and max(sides) >= 40:
            return path, boxes[int(np.argmax(sides))]
    pytest.fail("no plate of 40 px or more in plates-oi/test")


def blur_faces(detector_model: Path, track: bool = True) -> ModelConfig:
    """The face chain under the plates in these tests: blur, the default detector."""
    return model_config(method="blur", detector=str(detector_model), track=track)


def leaked(output: np.ndarray, source: np.ndarray, box) -> bool:
    (score,) = face_scores(output, source, [list(box)])
    return score.ssim >= LEAK_SSIM


def iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def nan_plates(src: Path, dst: Path) -> Path:
    """The plate model with every output multiplied by NaN: a broken model or engine."""
    model = onnx.load(str(src))
    out = model.graph.output[0]
    raw = out.name + "_raw"
    for node in model.graph.node:
        node.output[:] = [raw if o == out.name else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(np.nan, np.float32), "nan"))
    model.graph.node.append(helper.make_node("Mul", [raw, "nan"], [out.name]))
    onnx.save(model, str(dst))
    return dst


# --- without the model: config, cover ----------------------------------------------------------------------------

def test_plates_off_by_default_and_bounded():
    cfg = config_from_dict({})
    assert cfg.plates.enabled is False
    assert config_from_dict({"plates": {"enabled": True, "method": "synthetic"}}).plates.method == "synthetic"
    with pytest.raises(ConfigError, match="plates.method"):
        config_from_dict({"plates": {"method": "gan"}})
    with pytest.raises(ConfigError, match="plates.low_threshold"):
        config_from_dict({"plates": {"threshold": 0.2, "low_threshold": 0.5}})
    with pytest.raises(ConfigError, match="plates.every"):
        config_from_dict({"plates": {"every": 0}})


def test_missing_plate_model_is_one_clear_error(tmp_path, detector_model):
    cfg = PlatesConfig(enabled=True, model=str(tmp_path / "none.onnx"))
    with pytest.raises(ModelError, match="plate detector not found.*python -m export plates"):
        Redactor.from_config(blur_faces(detector_model), plates=cfg)


def test_doubtful_plate_is_blurred_and_counted_apart(face_image):
    frame = Frame(0, 0.0, face_image.copy())
    plates = [Detection(np.array([300, 400, 420, 440], np.float32), 0.9),
              Detection(np.array([40, 40, 140, 80], np.float32), 0.15, confident=False)]
    redacted = Anonymizer("blur", plate_cover=PlateCover("synthetic")).redact(frame, [], plates)
    assert [p.method for p in redacted.plates] == ["synthetic", "blur"]
    assert redacted.faces == ()
    for plate in plates:
        assert leaked(redacted.image, face_image, plate.box) is False


def test_synthetic_plate_takes_the_region_colours(face_image):
    roi = np.empty((40, 160, 3), np.uint8)
    roi[...] = (30, 200, 230)  # a yellow plate
    roi[10:30, 20:140] = (10, 10, 10)  # dark characters
    background, ink = plate_colours(roi)
    assert np.allclose(background, (30, 200, 230)) and np.allclose(ink, (10, 10, 10))
    plate = render_plate(160, 40, background, ink, "AB12CDE")
    assert plate.shape == (40, 160, 3)
    assert set(map(tuple, plate.reshape(-1, 3)[::7])) >= {(30, 200, 230)}


def test_the_engine_builder_takes_the_plate_model():
    assert models_of("detector,plates") == ["detector", "plates"]
    assert EngineSettings().ranges("plates") == {}  # a fixed 1 x 3 x 640 x 640 input
    profile = compute_profiles({"images": [1, 3, 640, 640]}, EngineSettings().ranges("plates"))
    assert profile["images"]["min"] == profile["images"]["opt"] == profile["images"]["max"] == [1, 3, 640, 640]
    assert source_onnx(REPO_ROOT / "models", "plates", plan_build("10.3.0", "int8")).name == "plates.int8-trt.onnx"
    assert source_onnx(REPO_ROOT / "models", "plates", plan_build("10.3.0", "fp16")).name == "plates.fp16.onnx"


# --- with the model ------------------------------------------------------------------------------------------------

def test_selftest_and_licence(plates_model):
    detector = PlateDetector.from_path(plates_model, backend="ort")
    assert check_plates(detector) >= 0.2
    assert detector.licence == "AGPL-3.0"
    assert "licence AGPL-3.0" in detector.describe()


def test_wrong_model_is_refused(plates_model, detector_model):
    face_model = PlateDetector.from_path(detector_model, backend="ort")
    with pytest.raises(PlateFault, match="expected \\[1, 5, anchors\\]"):
        face_model.detect(plate_selftest_image())


def test_nan_fails_closed(plates_model, tmp_path, plate_photo, detector_model):
    bad = PlateDetector.from_path(nan_plates(plates_model, tmp_path / "nan.onnx"), backend="ort")
    with pytest.raises(ModelError, match="self-test failed.*non-finite"):
        check_plates(bad)
    chain = Redactor.from_config(blur_faces(detector_model), self_test=False,
                                 plates=PlatesConfig(enabled=True, model=str(tmp_path / "nan.onnx")))
    with pytest.raises(PlateFault, match="non-finite"):
        chain.process(Frame(0, 0.0, cv2.imread(str(plate_photo[0]))))


def test_real_plate_found(plates_model, plate_photo):
    path, box = plate_photo
    found = PlateDetector.from_path(plates_model, backend="ort").detect(cv2.imread(str(path)))
    assert max(iou(p.box, box) for p in found) >= 0.5


@pytest.mark.parametrize("method", ["blur", "fill", "synthetic"])
def test_real_plate_covered(plates_model, plate_photo, method, detector_model):
    path, box = plate_photo
    source = cv2.imread(str(path))
    chain = Redactor.from_config(blur_faces(detector_model, track=False),
                                 plates=PlatesConfig(enabled=True, method=method))
    redacted = chain.process(Frame(0, 0.0, source.copy()))
    assert method in [p.method for p in redacted.plates]
    assert not leaked(redacted.image, source, box), f"{method}: the plate is still structurally the source"


def test_cli_anonymize_and_detect_plates(plates_model, plate_photo, tmp_path):
    path, box = plate_photo
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "edgeanon", "anonymize", str(path), "-o", str(tmp_path / "out"),
                           "--plates", "--plate-method", "synthetic", "--method", "blur", "--report", str(report)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "plate(s): synthetic" in done.stdout
    data = json.loads(report.read_text())
    assert data["plate_totals"].get("synthetic", 0) >= 1
    entry = data["files"][str(path)]
    assert any(p["method"] == "synthetic" and iou(p["box"], box) >= 0.5 for p in entry["plates"])
    output = cv2.imread(str(tmp_path / "out" / path.name))
    assert not leaked(output, cv2.imread(str(path)), box)
    found = subprocess.run([sys.executable, "-m", "edgeanon", "detect", str(path), "--plates"], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    plates = [p for p in json.loads(found.stdout)[path.name] if p.get("kind") == "plate"]
    assert any(iou(p["box"], box) >= 0.5 for p in plates)
    assert "licence AGPL-3.0" in found.stderr


def test_cli_missing_plate_model(tmp_path, plate_photo, detector_model):
    done = subprocess.run([sys.executable, "-m", "edgeanon", "anonymize", str(plate_photo[0]), "-o",
                           str(tmp_path / "out"), "--plates", "--plate-model", str(tmp_path / "none.onnx")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("edgeanon anonymize:") and "Traceback" not in done.stderr
    assert "plate detector not found" in done.stderr


def test_doctor_names_the_licence(plates_model, tmp_path):
    on = config_from_dict({"plates": {"enabled": True, "model": str(plates_model)}})
    check = doctor_plates(on)
    assert check.status == OK and "licence AGPL-3.0" in check.detail and check.detail.startswith("on")
    missing = config_from_dict({"plates": {"enabled": True, "model": str(tmp_path / "none.onnx")}})
    assert doctor_plates(missing).status == FAIL


def test_every_third_frame_the_tracker_holds_the_plate(plates_model, plate_photo, detector_model):
    path, box = plate_photo
    source = cv2.imread(str(path))
    chain = Redactor.from_config(blur_faces(detector_model), video=True, plates=PlatesConfig(enabled=True, every=3))
    counting = Counting(chain.plates.detector)
    chain.plates.detector = counting
    for i in range(5):  # 3 frames/s: three frames outlast the tracker's 0.5 s hold, so it must stretch it
        redacted = chain.process(Frame(i, i / 3, source.copy()))
        assert redacted.plates, f"frame {i}: no plate covered"
        assert not leaked(redacted.image, source, box), f"frame {i}: the plate is still the source"
    assert counting.calls == 2  # frames 0 and 3


class Counting:
    """The real plate detector, counting the frames it looks at."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def detect(self, image):
        self.calls += 1
        return self.inner.detect(image)
