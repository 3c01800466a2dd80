"""Silence is not health: a detector that outputs NaN or finds nothing on a known face fails closed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from devkit.daemon_kit import make_clip
from edgeanon.config import load_config, model_config
from edgeanon.detector import DetectorFault, FaceDetector
from edgeanon.frames import Frame
from edgeanon.inference.errors import ModelError
from edgeanon.pipeline import Pipeline
from edgeanon.redactor import Redactor
from edgeanon.selftest import SELFTEST_IMAGE, check_detector

REPO_ROOT = Path(__file__).resolve().parents[2]


def heatmap_times(detector_model: Path, out: Path, factor: float) -> Path:
    """The real detector with its heatmap output multiplied by `factor` (NaN: a broken engine; 0: a model that
    loads and runs and finds nothing)."""
    model = onnx.load(str(detector_model))
    heat = model.graph.output[0]
    raw = heat.name + "_raw"
    for node in model.graph.node:
        node.output[:] = [raw if o == heat.name else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), "heat_factor"))
    model.graph.node.append(helper.make_node("Mul", [raw, "heat_factor"], [heat.name]))
    onnx.save(model, str(out))
    return out


@pytest.fixture(scope="module")
def nan_model(detector_model, tmp_path_factory) -> Path:
    return heatmap_times(detector_model, tmp_path_factory.mktemp("nan") / "nan.onnx", float("nan"))


@pytest.fixture(scope="module")
def blind_model(detector_model, tmp_path_factory) -> Path:
    return heatmap_times(detector_model, tmp_path_factory.mktemp("blind") / "blind.onnx", 0.0)


def test_nan_outputs_raise_instead_of_finding_no_face(nan_model, face_image):
    detector = FaceDetector.from_path(nan_model)
    with pytest.raises(DetectorFault, match="non-finite"):
        detector.detect(face_image)


def test_the_self_test_passes_on_the_real_model_and_fails_on_a_blind_one(detector_model, blind_model, nan_model):
    face = check_detector(FaceDetector.from_path(detector_model))
    assert face.confident and face.score > 0.5
    blind = FaceDetector.from_path(blind_model)
    assert blind.detect(cv2.imread(str(SELFTEST_IMAGE))) == []  # it runs, and sees nothing
    with pytest.raises(ModelError, match="self-test failed"):
        check_detector(blind, "blind.onnx")
    with pytest.raises(ModelError, match="self-test failed"):
        Redactor.from_config(model_config(detector=str(blind_model), method="blur"))
    with pytest.raises(ModelError, match="non-finite"):
        Redactor.from_config(model_config(detector=str(nan_model), method="blur"))


def test_cli_refuses_a_blind_model_and_writes_nothing(blind_model, face_image, tmp_path):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), face_image)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "edgeanon", "anonymize", str(src), "-o", str(out), "--method",
                           "blur", "--detector-model", str(blind_model)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)
    assert proc.returncode != 0
    assert "self-test failed" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "in.png").exists()


def test_daemon_refuses_to_start_on_a_blind_model(blind_model, tmp_path):
    clip = make_clip(tmp_path / "clip.avi", frames=2, size=(160, 90))  # a source that opens (a missing one fails first)
    cfg = tmp_path / "d.toml"
    cfg.write_text(f'camera_id = "cam1"\n[source]\nuri = "file://{clip}"\n'
                   f'[model]\nmethod = "blur"\ndetector = "{blind_model}"\n[mqtt]\nhost = "127.0.0.1"\nport = 1\n')
    proc = subprocess.run([sys.executable, "-m", "edgeanon", "run", "--config", str(cfg)], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode != 0
    assert "self-test failed" in proc.stderr


class Recorder:
    """A publisher that keeps what it was handed (the pipeline's only outlet)."""

    def __init__(self):
        self.frames = []

    def publish_frame(self, redacted, event, started=None):
        self.frames.append(redacted)
        return True

    def publish_stats(self, stats):
        pass

    def close(self, timeout=None):
        pass


class NoSource:
    uri = "test://"

    def stats(self):
        return {}

    def close(self):
        pass


def test_a_nan_frame_is_dropped_never_published(nan_model, face_image, tmp_path):
    """The daemon's loop with a detector that turned NaN after start-up: the frame fails closed."""
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('camera_id = "cam1"\n[model]\nmethod = "blur"\n')
    cfg = load_config(cfg_file)
    chain = Redactor.from_config(model_config(detector=str(nan_model), method="blur"), video=True, self_test=False)
    recorder = Recorder()
    pipeline = Pipeline(cfg, NoSource(), chain, recorder)
    assert pipeline.handle(Frame(0, 0.0, face_image.copy())) is None
    assert recorder.frames == [] and pipeline.counters.dropped_error == 1


def test_a_detector_that_raises_at_start_up_is_refused_in_one_line(detector_model, tmp_path):
    """A model that loads but fails on the self-test picture (a reshape to another size) is refused."""
    model = onnx.load(str(detector_model))
    name = model.graph.input[0].name
    model.graph.input[0].name = "camera"
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 3, 96, 96], np.int64), "bad_shape"))
    model.graph.node.insert(0, helper.make_node("Reshape", ["camera", "bad_shape"], [name]))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    with pytest.raises(ModelError, match="self-test failed: the detector raised"):
        Redactor.from_config(model_config(detector=str(broken), method="blur"))
