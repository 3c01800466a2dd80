"""Bad input to the export toolkit: one clear line, a non-zero exit, and never a half-written output file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from edgeanon.atomic import atomic_path
from edgeanon.inference.manifest import DeviceEnvironment, EngineManifest, StaleEngineError, check_engine, sha256_file
from edgeanon.inference.manifest import write_manifest as write_engine_manifest
from export.conversion.fp16 import convert_fp16
from export.onnx_file import ExportError, load_checked
from export.paths import REPO_ROOT
from export.quantization.feeds import calibration_images
from export.quantization.quantize import quantize_detector


def export_cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture
def models(tmp_path, detector_model):
    shutil.copy(detector_model, tmp_path / "detector.onnx")
    return tmp_path


def old_opset_model(path: Path, opset: int = 11) -> Path:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


def test_truncated_and_corrupt_onnx_are_named(models):
    data = (models / "detector.onnx").read_bytes()
    (models / "detector.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match=r"detector.onnx: not a valid ONNX model"):
        load_checked(models / "detector.onnx")
    (models / "garbage.onnx").write_bytes(b"\x00\xffnot protobuf at all" * 10)
    with pytest.raises(ExportError, match="garbage.onnx: not a valid ONNX model"):
        load_checked(models / "garbage.onnx")
    (models / "empty.onnx").write_bytes(b"")
    with pytest.raises(ExportError, match="empty.onnx: model file is empty"):
        load_checked(models / "empty.onnx")
    with pytest.raises(ExportError, match="detector.onnx: not a valid ONNX model"):
        convert_fp16(models / "detector.onnx", models / "detector.fp16.onnx")
    assert not (models / "detector.fp16.onnx").exists() and not leftovers(models)


def test_wrong_opset_is_refused(tmp_path):
    with pytest.raises(ExportError, match="opset 11 is too old"):
        load_checked(old_opset_model(tmp_path / "old.onnx"))


def test_quantize_cli_truncated_model_one_line_no_output(models, shared_data):
    data = (models / "detector.onnx").read_bytes()
    (models / "detector.onnx").write_bytes(data[:1000])
    result = export_cli("quantize", "--models", str(models), "--data", str(shared_data), "--model", "detector")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "not a valid ONNX model" in result.stderr
    assert not (models / "detector.int8.onnx").exists() and not leftovers(models)


def test_missing_calibration_folder(models, tmp_path):
    with pytest.raises(ExportError, match="calibration folder not found"):
        calibration_images(tmp_path / "nowhere", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="holds no images"):
        calibration_images(tmp_path / "empty", 8)
    result = export_cli("quantize", "--models", str(models), "--data", str(tmp_path / "nodata"), "--model", "detector")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "wider-calib: calibration folder not found" in result.stderr
    assert not (models / "detector.int8.onnx").exists()


def test_failed_quantization_keeps_the_previous_output(models, shared_data, tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    shutil.copy(sorted((shared_data / "wider-calib").glob("*.jpg"))[0], calib / "a.jpg")
    (calib / "b.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    previous = models / "detector.int8.onnx"
    previous.write_bytes(b"previous good model")
    with pytest.raises(ExportError, match="b.jpg: not a readable image"):
        quantize_detector(models / "detector.onnx", calib, ("cpu",), limit=None)
    assert previous.read_bytes() == b"previous good model" and not leftovers(models)


def test_atomic_path_never_leaves_half_files(tmp_path):
    target = tmp_path / "out.onnx"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and not leftovers(tmp_path)


def test_engine_from_another_tensorrt_version_is_refused(tmp_path):
    onnx_file = tmp_path / "detector.onnx"
    onnx_file.write_bytes(b"model")
    engine = tmp_path / "detector.engine"
    engine.write_bytes(b"engine built on JetPack 5")
    built = DeviceEnvironment("8.5.2.2", "11.4", "Orin", "35.3.1", "5.1.1")
    write_engine_manifest(engine, EngineManifest(
        engine_sha256=sha256_file(engine), onnx_file="detector.onnx", onnx_sha256=sha256_file(onnx_file),
        precision="fp16", tensorrt_version=built.tensorrt_version, cuda_version=built.cuda_version,
        device_name=built.device_name, l4t_release=built.l4t_release, jetpack_version=built.jetpack_version))
    now = DeviceEnvironment("10.3.0.30", "12.6", "Orin", "36.4.3", "6.2")
    with pytest.raises(StaleEngineError) as info:
        check_engine(engine, now)
    message = str(info.value)
    assert "\n" not in message and "built with TensorRT 8.5.2.2" in message and "TensorRT 10.3.0.30" in message
    assert "edgeanon engines --model detector --precision fp16" in message


def test_engine_command_without_tensorrt_says_where_to_run(tmp_path):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    result = export_cli("engine", "--models", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "on the Jetson" in result.stderr
