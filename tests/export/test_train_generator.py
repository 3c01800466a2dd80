"""train-generator end to end on a few real WIDER faces: checkpoint, weights, preview, resume."""

from __future__ import annotations

import cv2
import pytest
import torch

from edgeanon.anonymize import crops
from edgeanon.detector import FaceDetector
from export import datasets
from export.__main__ import build_parser
from export.models.generator import Generator
from export.training import facecrops


@pytest.fixture(scope="module")
def crop_file(shared_data, detector_model, tmp_path_factory):
    """A crop file of real faces with at least 4 for training and 1 held back for the preview."""
    detector = FaceDetector.from_path(detector_model)
    writer = facecrops.CropWriter()
    for path in sorted((shared_data / datasets.WIDER).glob("*.jpg")):
        image = cv2.imread(str(path))
        for d in detector.detect(image):
            if d.landmarks is not None and d.box[2] - d.box[0] >= 24 and crops.landmarks_plausible(d.box, d.landmarks):
                writer.add(path.name, image, datasets.Face(d.box, d.score, d.landmarks))
        if sum(writer.held) >= 1 and len(writer.held) - sum(writer.held) >= 4:
            break
    return writer.save(tmp_path_factory.mktemp("crops") / "faces.npz")


def _train_status(crop_file, out, *extra) -> int:
    args = build_parser().parse_args(["train-generator", "--train-set", str(crop_file), "--out", str(out),
                                      "--batch", "2", "--preview-every", "0", *extra])
    return args.func(args)


def _train(crop_file, out, *extra):
    assert _train_status(crop_file, out, *extra) == 0
    return torch.load(out / "checkpoint.pt", weights_only=True)


def test_crop_file_round_trips(crop_file):
    cropset = facecrops.load_training_set(crop_file)
    assert cropset.images.shape[1:] == (crops.CROP_SIZE, crops.CROP_SIZE, 3)
    assert cropset.held_out.any() and (~cropset.held_out).sum() >= 4
    masks, heats = cropset.conditions([0])
    size = crops.CROP_SIZE
    assert masks.shape == (1, size, size) and heats.shape == (1, 5, size, size)


def test_training_saves_loadable_weights_and_a_preview_then_resumes(crop_file, tmp_path, caplog):
    first = _train(crop_file, tmp_path, "--minutes", "0.05")
    assert first["step"] > 0 and "opt_g" in first
    Generator().load_state_dict({k: v.float() for k, v in torch.load(tmp_path / "generator.pt").items()})
    preview = cv2.imread(str(tmp_path / "preview.png"))
    assert preview is not None and preview.shape[0] == 5 * crops.CROP_SIZE  # originals, inputs, 3 seeds
    caplog.set_level("INFO", logger="export.training.train")
    # Two latents per face, and context cut by simulated frame edges.
    second = _train(crop_file, tmp_path, "--minutes", "0.02", "--diversity-weight", "1", "--border-prob", "0.5")
    assert f"at step {first['step']}" in caplog.text
    assert second["step"] > first["step"] and second["images"] == second["step"] * 2
    changed = any(not torch.equal(a, first["generator"][k]) for k, a in second["generator"].items())
    assert changed  # the resumed run went on training


def test_a_missing_face_prior_is_a_clear_error(crop_file, tmp_path, caplog):
    args = build_parser().parse_args(["train-generator", "--train-set", str(crop_file), "--out", str(tmp_path),
                                      "--face-prior", str(tmp_path / "absent.pt")])
    assert args.func(args) == 2
    assert "face prior weights not found" in caplog.text and not (tmp_path / "checkpoint.pt").exists()


def test_gate_after_training_compares_with_the_committed_weights_and_decides(crop_file, shared_data, tmp_path, capsys):
    """Resume from a copy of the committed weights, train a moment, gate on tiny tuning settings: the copy is
    replaced (exit 0) by the new weights or left as it was (exit 1), and the table names every measure."""
    from export.training.gate import DEFAULT_WEIGHTS, MEASURES

    committed, onnx_path = tmp_path / "committed.pt", tmp_path / "generator.onnx"
    committed.write_bytes(DEFAULT_WEIGHTS.read_bytes())
    status = _train_status(crop_file, tmp_path / "run", "--minutes", "0.02", "--init-generator", str(committed),
                           "--data", str(shared_data), "--gate", "--gate-committed", str(committed), "--gate-onnx",
                           str(onnx_path), "--gate-images", "2", "--gate-faces", "2", "--gate-threads", "1",
                           "--gate-work", str(tmp_path / "gate"))
    out = capsys.readouterr().out
    assert all(m.name in out for m in MEASURES)
    candidate = (tmp_path / "run" / "generator.pt").read_bytes()
    if status == 0:
        assert committed.read_bytes() == candidate and onnx_path.is_file() and "promoted" in out
    else:
        assert status == 1 and committed.read_bytes() == DEFAULT_WEIGHTS.read_bytes() and not onnx_path.exists()
        assert "kept" in out
