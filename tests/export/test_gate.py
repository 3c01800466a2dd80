"""The generator gate: its decision on plain numbers, the tuning split, promotion, and one real run on the data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from export.__main__ import build_parser
from export.training.gate import DEFAULT_WEIGHTS, MEASURES, decide, promote, table

BASE = {"ap_retention": 1.5, "detail": 0.35, "identity_share": 0.10, "reid_rank1": 0.03, "tone_r": 0.5,
        "dita_worst": 20.0, "dlib_diversity": 0.7, "sface_diversity": 0.6, "dlib_gap": 0.02, "sface_gap": 0.01,
        "sface_reid_x_chance": 5.0, "seam": 0.4}
# Each measure one step better than BASE.
BETTER = {"ap_retention": 1.6, "detail": 0.36, "identity_share": 0.09, "reid_rank1": 0.02, "tone_r": 0.6,
          "dita_worst": 15.0, "dlib_diversity": 0.8, "sface_diversity": 0.7, "dlib_gap": 0.01, "sface_gap": 0.0,
          "sface_reid_x_chance": 4.0, "seam": 0.35}
WORSE = {"ap_retention": 1.4, "detail": 0.34, "identity_share": 0.11, "reid_rank1": 0.04, "tone_r": 0.4,
         "dita_worst": 25.0, "dlib_diversity": 0.6, "sface_diversity": 0.5, "dlib_gap": 0.03, "sface_gap": 0.02,
         "sface_reid_x_chance": 6.0, "seam": 0.45}


def test_a_candidate_equal_on_every_measure_is_kept():
    verdict = decide(BASE, dict(BASE))
    assert not verdict.promote and verdict.reason == "no measure is better"
    assert set(verdict.outcome.values()) == {"same"}


def test_every_gate_measure_has_a_better_and_a_worse_example():
    assert set(BASE) == set(BETTER) == set(WORSE) == {m.key for m in MEASURES}


@pytest.mark.parametrize("key, value", sorted(BETTER.items()))
def test_one_better_measure_and_none_worse_promotes(key, value):
    verdict = decide(BASE, {**BASE, key: value})
    assert verdict.promote and verdict.outcome[key] == "better"
    assert [k for k, v in verdict.outcome.items() if v != "same"] == [key]


@pytest.mark.parametrize("key, value", sorted(WORSE.items()) + [("detail", math.nan), ("tone_r", math.nan)])
def test_any_worse_measure_keeps_the_committed_weights_and_names_it(key, value):
    verdict = decide(BASE, {**BETTER, key: value})
    assert not verdict.promote and verdict.outcome[key] == "worse"
    name = next(m.name for m in MEASURES if m.key == key)
    assert verdict.reason == f"worse: {name}"


def test_a_measure_both_weights_miss_is_a_tie_and_only_the_candidate_missing_it_is_worse():
    both = decide({**BASE, "tone_r": math.nan}, {**BASE, "tone_r": math.nan, "seam": 0.3})
    assert both.promote and both.outcome["tone_r"] == "same"
    assert decide({**BASE, "tone_r": math.nan}, {**BETTER}).outcome["tone_r"] == "worse"


def test_the_table_shows_both_values_and_the_outcome_of_each_measure():
    candidate = {**BASE, "identity_share": 0.08}
    text = table(BASE, candidate, decide(BASE, candidate))
    line = next(row for row in text.splitlines() if row.startswith("identity in context: share"))
    assert line.split()[-3:] == ["10.0%", "8.0%", "better"]
    assert len(text.splitlines()) == len(MEASURES) + 1


def test_promotion_copies_the_weights_and_re_exports_a_working_model(tmp_path, face_image, faces):
    from edgeanon.anonymize.gan import FaceGenerator

    committed, onnx_path = tmp_path / "generator.pt", tmp_path / "generator.onnx"
    committed.write_bytes(b"old weights")
    promote(DEFAULT_WEIGHTS, committed, onnx_path)
    assert committed.read_bytes() == DEFAULT_WEIGHTS.read_bytes()
    image = face_image.copy()
    assert FaceGenerator.from_path(onnx_path, backend="ort", threads=1).replace(image, faces, [7]) == [True]
    assert not np.array_equal(image, face_image)


def test_the_gate_on_real_data_keeps_weights_that_are_no_better(shared_data, detector_model, tmp_path, capsys):
    """The same weights under two names: every measure ties, so nothing is promoted (exit status 1)."""
    committed, candidate = tmp_path / "committed.pt", tmp_path / "candidate.pt"
    committed.write_bytes(DEFAULT_WEIGHTS.read_bytes())
    candidate.write_bytes(DEFAULT_WEIGHTS.read_bytes())
    onnx_path = tmp_path / "generator.onnx"
    args = build_parser().parse_args([
        "gate-generator", "--candidate", str(candidate), "--committed", str(committed), "--onnx", str(onnx_path),
        "--data", str(shared_data), "--detector", str(detector_model), "--images", "2", "--faces", "3",
        "--threads", "1", "--work", str(tmp_path / "work")])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "generator gate on the tuning split: 2 wider-train images" in out
    assert "kept" in out and "no measure is better" in out
    report = json.loads((tmp_path / "work" / "gate.json").read_text())
    assert report["split"] == "tune" and report["faces"] == 3 and not report["promoted"]
    assert report["committed"] == report["candidate"] and set(report["outcome"].values()) == {"same"}
    assert not onnx_path.exists() and committed.read_bytes() == DEFAULT_WEIGHTS.read_bytes()


def test_the_gate_refuses_missing_inputs_in_one_line(tmp_path, caplog):
    args = build_parser().parse_args(["gate-generator", "--candidate", str(tmp_path / "absent.pt"),
                                      "--work", str(tmp_path)])
    assert args.func(args) == 2
    assert f"{tmp_path / 'absent.pt'}: candidate weights not found" in caplog.text
