"""Daemon config: TOML validation with the key's dotted name, overrides, the example file, CLI exit code 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeanon.config import Config, ConfigError, config_from_dict, describe, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "edgeanon.example.toml"


def test_defaults_without_file():
    cfg = load_config(None)
    assert cfg == Config()
    assert cfg.mqtt.port == 1883 and cfg.mqtt.prefix == "edgeanon" and cfg.pipeline.on_failure == "drop"


def test_example_config_loads_and_documents_every_key():
    cfg = load_config(EXAMPLE)
    assert cfg == Config(), "the example shows the defaults"
    text = EXAMPLE.read_text()
    for dotted, _default, _doc in describe():
        section, _, key = dotted.rpartition(".")
        if section:
            assert f"[{section}]" in text, f"example lacks section [{section}]"
        assert re.search(rf"^#? ?{re.escape(key)} = ", text, re.M), f"example does not document {dotted}"


def test_values_are_read(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('camera_id = "door"\n[source]\nuri = "file:///x.mp4"\nloop = true\n'
                    '[mqtt]\nport = 8883\nqueue_size = 3\n[pipeline]\ndeadline_ms = 250\non_failure = "mask"\n')
    cfg = load_config(path)
    assert (cfg.camera_id, cfg.source.uri, cfg.source.loop) == ("door", "file:///x.mp4", True)
    assert (cfg.mqtt.port, cfg.mqtt.queue_size, cfg.pipeline.deadline_ms) == (8883, 3, 250.0)
    assert isinstance(cfg.pipeline.deadline_ms, float)
    assert cfg.pipeline.on_failure == "mask"


@pytest.mark.parametrize("doc, key, hint", [
    ({"mqtt": {"prot": 1}}, "mqtt.prot", "did you mean 'mqtt.port'"),
    ({"sourse": {}}, "sourse", "did you mean 'source'"),
    ({"mqtt": {"tls": {"cafile": "x"}}}, "mqtt.tls.cafile", "known keys"),
    ({"mqtt": {"port": "1883"}}, "mqtt.port", "expected an integer"),
    ({"source": {"loop": "yes"}}, "source.loop", "expected true or false"),
    ({"pipeline": {"deadline_ms": True}}, "pipeline.deadline_ms", "expected a number"),
    ({"mqtt": 5}, "mqtt", "expected a table"),
    ({"mqtt": {"port": 70000}}, "mqtt.port", "between 1 and 65535"),
    ({"pipeline": {"deadline_ms": 0}}, "pipeline.deadline_ms", "greater than 0"),
    ({"pipeline": {"on_failure": "send"}}, "pipeline.on_failure", "'drop', 'mask'"),
    ({"model": {"method": "sepia"}}, "model.method", "'gan', 'ksame', 'blur'"),
    ({"camera_id": "a/b"}, "camera_id", "no '+', '#' or '/'"),
    ({"source": {"uri": "/dev/video0"}}, "source.uri", "v4l2:///dev/video0"),
    ({"source": {"uri": "http://x"}}, "source.uri", "scheme one of"),
    ({"mqtt": {"max_payload": 3_000_000_000}}, "mqtt.max_payload", "between"),
    ({"source": {"reconnect_min_s": 5, "reconnect_max_s": 1}}, "source.reconnect_max_s", "reconnect_min_s"),
    ({"encode": {"quality": 50, "min_quality": 60}}, "encode.min_quality", "encode.quality"),
    ({"mqtt": {"tls": {"ca": "/x/ca.pem", "cert": "/x/c.pem"}}}, "mqtt.tls.cert", "mqtt.tls.key"),
    ({"mqtt": {"tls": {"ca": "/nonexistent/ca.pem"}}}, "mqtt.tls.ca", "file not found"),
    ({"mqtt": {"password": "pw"}}, "mqtt.password", "mqtt.username"),
    # Every number is bounded by what the protocol or the hardware allows (inf and nan included).
    ({"mqtt": {"frame_expiry_s": 5_000_000_000}}, "mqtt.frame_expiry_s", "between 1 and 4294967295"),
    ({"mqtt": {"reconnect_max_s": 10**9}}, "mqtt.reconnect_max_s", "between 1 and 3600"),
    ({"mqtt": {"queue_size": 500, "max_payload": 10_000_000}}, "mqtt.queue_size", "MiB"),
    ({"mqtt": {"client_id": "x" * 300}}, "mqtt.client_id", "at most 256 bytes"),
    ({"camera_id": "cam\x00"}, "camera_id", "control characters"),
    ({"pipeline": {"deadline_ms": float("inf")}}, "pipeline.deadline_ms", "at most 60000"),
    ({"pipeline": {"deadline_ms": float("nan")}}, "pipeline.deadline_ms", "greater than 0"),
    ({"pipeline": {"stats_interval_s": 1e-9}}, "pipeline.stats_interval_s", "between"),
    ({"source": {"width": 100_000}}, "source.width", "between 16 and 8192"),
    ({"source": {"fps": float("inf")}}, "source.fps", "between"),
    ({"source": {"stall_timeout_s": 1e12}}, "source.stall_timeout_s", "between"),
    ({"source": {"reconnect_max_s": float("inf")}}, "source.reconnect_max_s", "between"),
    ({"model": {"threads": 10**6}}, "model.threads", "between 0 and 256"),
])
def test_rejected_with_key_and_hint(doc, key, hint):
    with pytest.raises(ConfigError) as err:
        config_from_dict(doc)
    message = str(err.value)
    assert message.startswith(key), message
    assert hint in message
    assert "\n" not in message


def test_overrides_apply_and_are_checked():
    cfg = config_from_dict({"mqtt": {"host": "a"}, "model": {"method": "pixelate"}},
                           {"mqtt.host": "b", "mqtt.port": 1884, "model.method": None})
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.model.method) == ("b", 1884, "pixelate")  # None: not overridden
    with pytest.raises(ConfigError, match="^source.uri"):
        config_from_dict({}, {"source.uri": "camera0"})


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt\nport = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[mqtt]\nport = -1\n")
    with pytest.raises(ConfigError, match=r"wrong.toml: mqtt.port = -1"):
        load_config(wrong)


def test_cli_malformed_config_one_line_exit_2(tmp_path):
    path = tmp_path / "daemon.toml"
    path.write_text('[source]\nuri = "file:///x.mp4"\n[pipeline]\ndeadline = 100\n')
    proc = subprocess.run([sys.executable, "-m", "edgeanon", "run", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "pipeline.deadline: unknown key" in lines[0] and "pipeline.deadline_ms" in lines[0]
    assert "Traceback" not in proc.stderr


def test_cli_bad_override_exit_2():
    proc = subprocess.run([sys.executable, "-m", "edgeanon", "run", "--mqtt-port", "0", "--source", "file:///x"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "edgeanon run: mqtt.port = 0: must be between 1 and 65535"


def test_the_examples_cameras_block_loads(tmp_path):
    """The commented [[cameras]] block of the example, switched on: two cameras over the example's top level."""
    from edgeanon.config import cameras_of

    text = EXAMPLE.read_text()
    block = text[text.index("# [[cameras]]"):]
    on = text[:text.index("# [[cameras]]")] + "\n".join(line[2:] if line.startswith("# ") else line
                                                          for line in block.splitlines())
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    path = tmp_path / "device.toml"
    path.write_text(on.replace("/etc/edgeanon/tls/front-door.crt", str(cert))
                    .replace("/etc/edgeanon/tls/front-door.key", str(cert))
                    .replace('# ca = "/etc/edgeanon/ca.crt"', f'ca = "{cert}"'))
    cfg = load_config(path)
    front, yard = cameras_of(cfg)
    assert (front.camera_id, front.source.uri, front.pipeline.deadline_ms) == ("front-door", "csi://0", 1000.0)
    assert (yard.camera_id, yard.pipeline.deadline_ms, yard.mqtt.tls.cert) == ("yard", 500.0, None)
    assert front.mqtt.tls.cert == str(cert) and front.mqtt.host == yard.mqtt.host == cfg.mqtt.host
    assert cameras_of(load_config(EXAMPLE)) == (load_config(EXAMPLE),), "no [[cameras]]: the top level alone"


@pytest.mark.parametrize("toml, message", [
    ('[[cameras]]\ncamera_id = "a"\n[cameras.model]\nmethod = "blur"\n', "cameras[0].model: not a per-camera key"),
    ('[[cameras]]\ncamera_id = "a"\n[[cameras]]\ncamera_id = "a"\n', "cameras[1].camera_id = 'a': cameras[0]"),
    ('[[cameras]]\n[cameras.source]\nuri = "csi://1"\n', "cameras[0].camera_id: every camera needs its own id"),
    ('[[cameras]]\ncamera_id = "a"\n[cameras.pipeline]\ndeadline_ms = 0\n', "cameras[0].pipeline.deadline_ms = 0.0"),
    ('[[cameras]]\ncamera_id = "a"\n[cameras.mqtt]\nclient_id = "x"\n[[cameras]]\ncamera_id = "b"\n'
     '[cameras.mqtt]\nclient_id = "x"\n', "cameras[1].mqtt.client_id = 'x'"),
    ("cameras = 3\n", "cameras: expected a list of tables"),
    ("".join(f'[[cameras]]\ncamera_id = "c{i}"\n' for i in range(17)), "17 cameras; one daemon serves 1 to 16"),
])
def test_camera_mistakes_name_the_camera_and_key(tmp_path, toml, message):
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_command_line_source_is_refused_for_several_cameras(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[cameras]]\ncamera_id = "a"\n')
    with pytest.raises(ConfigError, match="source.uri: cannot be set on the command line"):
        load_config(path, {"source.uri": "file:///x.mp4"})
    assert load_config(path, {"mqtt.host": "broker"}).cameras[0].mqtt.host == "broker"
