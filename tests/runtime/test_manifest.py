"""Engine manifests: round trip, required keys, and refusing stale or foreign engines (pure logic)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from edgeanon.inference.errors import ModelError
from edgeanon.inference.manifest import (
    REQUIRED_KEYS,
    DeviceEnvironment,
    EngineManifest,
    StaleEngineError,
    check_engine,
    jetpack_for_l4t,
    manifest_path,
    parse_l4t_release,
    read_manifest,
    rebuild_command,
    sha256_file,
    staleness_problems,
    write_manifest,
)

ORIN_JP6 = DeviceEnvironment("10.3.0.30", "12.6", "Orin", "36.4.3", "6.2")


def built(tmp_path, env=ORIN_JP6, precision="fp16"):
    onnx = tmp_path / "detector.onnx"
    onnx.write_bytes(b"onnx model bytes")
    engine = tmp_path / "detector.engine"
    engine.write_bytes(b"serialized engine")
    manifest = EngineManifest(
        engine_sha256=sha256_file(engine), onnx_file=onnx.name, onnx_sha256=sha256_file(onnx), precision=precision,
        tensorrt_version=env.tensorrt_version, cuda_version=env.cuda_version, device_name=env.device_name,
        l4t_release=env.l4t_release, jetpack_version=env.jetpack_version,
        profiles={"input": {"min": [1, 3, 320, 320], "opt": [1, 3, 736, 1280], "max": [1, 3, 1088, 1920]}},
        onnx_metadata={"latent": "32"})
    write_manifest(engine, manifest)
    return engine, onnx, manifest


def test_round_trip_keeps_every_key_and_leaves_the_engine_untouched(tmp_path):
    engine, _, manifest = built(tmp_path)
    assert manifest_path(engine).name == "detector.engine.json"
    assert engine.read_bytes() == b"serialized engine"  # nothing prepended
    data = json.loads(manifest_path(engine).read_text())
    assert set(REQUIRED_KEYS) <= set(data)
    assert read_manifest(engine) == manifest and read_manifest(engine).onnx_metadata == {"latent": "32"}
    assert check_engine(engine, ORIN_JP6) == manifest
    assert not list(tmp_path.glob(".*tmp*"))


def test_stale_when_the_onnx_changed(tmp_path):
    engine, onnx, _ = built(tmp_path)
    onnx.write_bytes(b"retrained model")
    with pytest.raises(StaleEngineError, match="stale: detector.onnx changed") as info:
        check_engine(engine, ORIN_JP6)
    assert "edgeanon engines --model detector --precision fp16" in str(info.value)


@pytest.mark.parametrize("other, words", [
    (replace(ORIN_JP6, tensorrt_version="8.5.2.2"), "TensorRT 10.3.0.30"),
    (replace(ORIN_JP6, l4t_release="35.3.1", jetpack_version="5.1.1"), "L4T 36.4.3"),
    (replace(ORIN_JP6, device_name="Xavier"), "GPU 'Orin'"),
])
def test_foreign_engines_are_refused_with_the_reason(tmp_path, other, words):
    engine, _, _ = built(tmp_path)
    with pytest.raises(StaleEngineError, match="foreign") as info:
        check_engine(engine, other)
    assert words in str(info.value) and "rebuild it on this device" in str(info.value)


def test_cuda_minor_difference_alone_is_not_foreign(tmp_path):
    _, _, manifest = built(tmp_path)
    assert staleness_problems(manifest, replace(ORIN_JP6, cuda_version="12.8"), manifest.onnx_sha256) == []


def test_missing_onnx_is_not_a_problem_but_a_changed_engine_is(tmp_path):
    engine, onnx, manifest = built(tmp_path)
    onnx.unlink()
    assert check_engine(engine, ORIN_JP6) == manifest
    engine.write_bytes(b"truncated")
    with pytest.raises(StaleEngineError, match="engine file changed"):
        check_engine(engine, ORIN_JP6)


def test_missing_corrupt_or_incomplete_manifest(tmp_path):
    engine, _, _ = built(tmp_path)
    path = manifest_path(engine)
    path.write_text("{not json")
    with pytest.raises(StaleEngineError, match="unreadable manifest"):
        read_manifest(engine)
    path.write_text(json.dumps({"precision": "fp16"}))
    with pytest.raises(StaleEngineError, match="lacks format, engine_sha256"):
        read_manifest(engine)
    path.unlink()
    with pytest.raises(StaleEngineError, match="no manifest"):
        check_engine(engine, ORIN_JP6)
    with pytest.raises(ModelError, match="not found"):
        check_engine(tmp_path / "absent.engine", ORIN_JP6)


def test_l4t_parsing_and_jetpack_names():
    line = "# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64, DATE: Sun Mar 19 2023"
    assert parse_l4t_release(line) == "35.3.1"
    assert jetpack_for_l4t("35.3.1") == "5.1.1"
    assert jetpack_for_l4t("36.4.3") == "6.2"
    assert parse_l4t_release("garbage") == "none" and jetpack_for_l4t("none") == "none"
    assert jetpack_for_l4t("99.9") == "unknown"


def test_rebuild_command_names_model_precision_and_source(tmp_path):
    engine, _, manifest = built(tmp_path, precision="int8")
    manifest = replace(manifest, onnx_file="detector.int8-trt.onnx")
    command = rebuild_command(engine, manifest)
    assert command.startswith("edgeanon engines --model detector --precision int8")
    assert "detector.int8-trt.onnx" in command
