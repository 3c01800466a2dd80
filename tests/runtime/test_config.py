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
    ({"model": {"method": "sepia"}}, "model.method", "'gan', 'blur'"),
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
