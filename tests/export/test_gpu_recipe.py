"""The one-call GPU recipe, run on the CPU with --smoke: what it hands back, and a clear line for what is missing."""

from __future__ import annotations

import json

import cv2
import pytest
import torch

from export import datasets
from export.models.generator import Generator
from export.splits import generator_holdout
from export.training import facecrops, gpu_recipe


@pytest.fixture(scope="module")
def astronaut_crops(face_image, faces, tmp_path_factory):
    """A crop file of the astronaut's face under file names that put 4 in training and 1 held back (no shared
    data needed: this is the recipe's own test, and CI has no ../shared)."""
    face = faces[0]
    writer = facecrops.CropWriter()
    for i in range(200):
        name = f"astronaut_{i}.jpg"
        if sum(writer.held) < 1 and generator_holdout(name) or len(writer.held) - sum(writer.held) < 4 \
                and not generator_holdout(name):
            image = face_image if i % 2 else cv2.flip(face_image, 1)
            box, lm = face.box.copy(), face.landmarks.copy()
            if not i % 2:  # mirrored: boxes and landmarks mirrored, left and right eye (mouth corner) swapped
                w = image.shape[1]
                box = [w - box[2], box[1], w - box[0], box[3]]
                lm = lm[[1, 0, 2, 4, 3]] * [-1, 1] + [w, 0]
            writer.add(name, image, datasets.Face(torch.tensor(box).numpy(), face.score, lm))
    assert sum(writer.held) == 1 and len(writer.held) == 5
    return writer.save(tmp_path_factory.mktemp("crops") / "faces.npz")


def test_smoke_run_hands_back_a_candidate_a_preview_a_light_checkpoint_and_a_summary(astronaut_crops, tmp_path):
    assert gpu_recipe.main(["--train-set", str(astronaut_crops), "--out", str(tmp_path), "--smoke",
                            "--lr", "1e-5"]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"generator.pt", "preview.png", "checkpoint.pt", "train.log",
                                                     "summary.json"}
    Generator().load_state_dict({k: v.float() for k, v in torch.load(tmp_path / "generator.pt").items()})
    assert cv2.imread(str(tmp_path / "preview.png")) is not None
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert "opt_g" not in state and state["generator"]["head.weight" if "head.weight" in state["generator"]
                                                       else next(iter(state["generator"]))].dtype == torch.float16
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["device"] == "cpu" and summary["batch"] == 2 and summary["steps"] > 0
    assert summary["options"] == ["--lr", "1e-5"] and "gate-generator" in summary["gate"]
    # A second call continues from the checkpoint the first handed back.
    again = tmp_path / "again"
    assert gpu_recipe.main(["--train-set", str(astronaut_crops), "--out", str(again), "--smoke",
                           "--resume", str(tmp_path / "checkpoint.pt")]) == 0
    assert json.loads((again / "summary.json").read_text())["steps"] > summary["steps"]
    assert "resumed from" in (again / "train.log").read_text()


def test_a_missing_crop_file_is_one_clear_line(tmp_path, caplog):
    assert gpu_recipe.main(["--train-set", str(tmp_path / "absent.npz"), "--out", str(tmp_path), "--smoke"]) == 2
    assert f"{tmp_path / 'absent.npz'}: crop file" in caplog.text


def test_pack_keeps_a_stable_subset_that_fits_the_size_asked_for(astronaut_crops, tmp_path):
    budget = astronaut_crops.stat().st_size * 0.75
    packed, again = tmp_path / "packed.npz", tmp_path / "again.npz"
    for out in (packed, again):
        assert gpu_recipe.main(["--pack", str(astronaut_crops), "--train-set", str(out),
                               "--max-mib", str(budget / 2**20)]) == 0
    assert packed.stat().st_size <= budget and packed.read_bytes() == again.read_bytes()
    full, part = facecrops.load_training_set(astronaut_crops), facecrops.load_training_set(packed)
    assert part.held_out.sum() == 1 and 1 <= (~part.held_out).sum() < (~full.held_out).sum()
    kept = {name: image for name, image in zip(part.names, part.images, strict=True)}  # not re-encoded
    assert all((kept[n] == im).all() for n, im in zip(full.names, full.images, strict=True) if n in kept)
