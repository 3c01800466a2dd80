"""`edgeanon doctor`: each check against real files, sockets and a real mosquitto; the CLI's checklist and exit code."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgeanon.commands import doctor
from edgeanon.commands.doctor import FAIL, OK, SKIP, WARN, SystemPaths
from edgeanon.config import config_from_dict
from edgeanon.inference.manifest import DeviceEnvironment, EngineManifest, sha256_file, write_manifest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "edgeanon@.service"
JP6 = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 2025\n"

# /proc/devices as a Jetson reports it (driver names vary by L4T release; majors are dynamic).
JETSON_PROC_DEVICES = """Character devices:
  1 mem
 10 misc
 81 video4linux
489 nvhost-gpu
490 nvhost-ctrl-gpu
491 nvgpu-igpu0
492 17000000.ga10b
493 nvsciipc

Block devices:
  8 sd
"""


def fake_paths(tmp_path: Path, release: str | None = None) -> SystemPaths:
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    if release is not None:
        (etc / "nv_tegra_release").write_text(release)
    (tmp_path / "dev").mkdir(exist_ok=True)
    return SystemPaths(tegra_release=etc / "nv_tegra_release", dev=tmp_path / "dev",
                       argus_socket=tmp_path / "argus_socket", jtop_socket=tmp_path / "jtop.sock",
                       proc_devices=tmp_path / "devices", units=(tmp_path / "no-unit.service",))


@pytest.mark.parametrize("release, status, words", [
    (None, OK, "not a Jetson"),
    (JP6, OK, "L4T R36.4.3 (JetPack 6.2)"),
    ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64\n", OK, "JetPack 5.1.2"),
    ("# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t210ref, EABI: aarch64\n", FAIL, "not supported"),
    ("garbage\n", FAIL, "cannot read"),
])
def test_platform(tmp_path, release, status, words):
    check = doctor.check_platform(fake_paths(tmp_path, release))
    assert check.status == status and words in check.detail, check


def test_unit_device_allow_covers_jetson_nodes_and_names_the_rest():
    allowed = doctor.parse_device_allow(UNIT.read_text())
    assert "char-video4linux" in allowed and "/dev/nvmap" in allowed
    majors = doctor.parse_proc_devices(JETSON_PROC_DEVICES)
    assert majors[81] == "video4linux" and 8 not in majors  # block devices are not char majors
    nodes = {"/dev/video0": 81, "/dev/nvmap": 10, "/dev/nvhost-gpu": 489, "/dev/nvhost-ctrl-gpu": 490,
             "/dev/nvgpu/igpu0/ctrl": 491, "/dev/nvgpu/igpu0/as": 492}
    assert doctor.uncovered_devices(nodes, majors, allowed) == []
    # A misc device other than nvmap, and a driver the unit does not name, are reported.
    missing = doctor.uncovered_devices({"/dev/nvsciipc": 493, "/dev/watchdog": 10}, majors, allowed)
    assert missing == ["/dev/nvsciipc (driver 'nvsciipc')", "/dev/watchdog (driver 'misc')"]


def test_device_access_skips_without_nodes(tmp_path):
    assert doctor.check_device_access(fake_paths(tmp_path)).status == SKIP


def _listening_unix_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock


def test_camera_checks(tmp_path):
    off_jetson = fake_paths(tmp_path)
    assert doctor.check_camera("csi://0", off_jetson).status == FAIL
    assert doctor.check_camera("v4l2:///dev/video77", off_jetson).status == FAIL
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0")
    assert doctor.check_camera(f"file://{clip}", off_jetson).status == OK
    assert doctor.check_camera(f"file://{tmp_path}/none.mp4", off_jetson).status == FAIL
    assert doctor.check_camera(None, off_jetson).status == WARN

    (tmp_path / "jetson").mkdir()
    jetson = fake_paths(tmp_path / "jetson", JP6)
    missing = doctor.check_camera("csi://0", jetson)
    assert missing.status == FAIL and "nvargus-daemon" in missing.detail
    with _listening_unix_socket(jetson.argus_socket):
        assert doctor.check_camera("csi://0", jetson).status == OK
        assert doctor.check_camera(None, jetson).status == OK


def test_rtsp_reachability(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert doctor.check_camera(f"rtsp://127.0.0.1:{port}/stream", fake_paths(tmp_path)).status == OK
    closed = doctor.check_camera(f"rtsp://127.0.0.1:{port}/stream", fake_paths(tmp_path), timeout=1)
    assert closed.status == FAIL and "unreachable" in closed.detail


def _engine(tmp_path: Path, env: DeviceEnvironment) -> Path:
    onnx = tmp_path / "detector.onnx"
    onnx.write_bytes(b"onnx bytes")
    engine = tmp_path / "detector.fp16.engine"
    engine.write_bytes(b"engine bytes")
    write_manifest(engine, EngineManifest(
        engine_sha256=sha256_file(engine), onnx_file=onnx.name, onnx_sha256=sha256_file(onnx), precision="fp16",
        tensorrt_version=env.tensorrt_version, cuda_version=env.cuda_version, device_name=env.device_name,
        l4t_release=env.l4t_release, jetpack_version=env.jetpack_version))
    return engine


def test_engines_fresh_and_foreign(tmp_path):
    here = DeviceEnvironment("10.3.0", "12.6", "Orin", "36.4.3", "6.2")
    engine = _engine(tmp_path, here)
    assert doctor.check_engines([engine], environment=lambda: here).status == OK
    upgraded = DeviceEnvironment("10.7.0", "12.6", "Orin", "36.4.4", "6.2.1")
    check = doctor.check_engines([engine], environment=lambda: upgraded)
    assert check.status == FAIL and "TensorRT 10.3.0" in check.detail and "rebuild" in check.detail
    (tmp_path / "detector.onnx").write_bytes(b"new model")
    assert "stale" in doctor.check_engines([engine], environment=lambda: here).detail
    assert doctor.check_engines([], environment=lambda: here).status == WARN


def test_engines_without_tensorrt(tmp_path):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    engine = _engine(tmp_path, DeviceEnvironment("10.3.0", "12.6", "Orin", "36.4.3", "6.2"))
    assert doctor.check_engines([engine]).status == WARN
    assert doctor.check_engines([]).status == SKIP


def _mqtt_cfg(**mqtt):
    return config_from_dict({"camera_id": "cam1", "mqtt": mqtt}).mqtt


def test_broker_with_device_certificate(secure_broker):
    cert, key = secure_broker.cert_for("cam1")
    tls = {"ca": secure_broker.ca_path, "cert": cert, "key": key}
    check = doctor.check_broker(_mqtt_cfg(host="localhost", port=secure_broker.tls_port, tls=tls), "cam1")
    assert check.status == OK and "client certificate" in check.detail, check


def test_broker_refusals(secure_broker, tmp_path):
    no_cert = doctor.check_broker(_mqtt_cfg(host="localhost", port=secure_broker.tls_port,
                                            tls={"ca": secure_broker.ca_path}), "cam1", timeout=3)
    assert no_cert.status == FAIL, no_cert
    anonymous = doctor.check_broker(_mqtt_cfg(host="127.0.0.1", port=secure_broker.port), "cam1", timeout=3)
    assert anonymous.status == FAIL and "refused" in anonymous.detail, anonymous

    from devkit.broker import Broker

    other = Broker(tmp_path / "other", tls=True)
    cert, key = other.cert_for("cam1")
    foreign_ca = doctor.check_broker(_mqtt_cfg(host="localhost", port=secure_broker.tls_port,
                                               tls={"ca": other.ca_path, "cert": cert, "key": key}), "cam1")
    assert foreign_ca.status == FAIL and "does not verify" in foreign_ca.detail, foreign_ca


def test_plain_broker_is_a_warning(mosquitto_broker):
    check = doctor.check_broker(_mqtt_cfg(host="127.0.0.1", port=mosquitto_broker.port), "cam1")
    assert check.status == WARN and "plain TCP" in check.detail


def test_jtop_on_a_jetson_without_its_service(tmp_path):
    cfg = config_from_dict({})
    assert doctor.check_jtop(cfg, fake_paths(tmp_path)).status == SKIP
    check = doctor.check_jtop(cfg, fake_paths(tmp_path, JP6))
    assert check.status == WARN and "jtop service not running" in check.detail


def test_world_readable_key_fails(secure_broker):
    cert, key = secure_broker.cert_for("cam9")
    cfg = config_from_dict({"mqtt": {"tls": {"ca": secure_broker.ca_path, "cert": cert, "key": key}}})
    os.chmod(key, 0o644)
    check = doctor.check_permissions(cfg, None)
    assert check.status == FAIL and "world-readable" in check.detail


def _doctor_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeanon", "doctor", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=60)


def test_cli_fails_on_an_unreachable_broker(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "cam1.toml"
    config.write_text(f'camera_id = "cam1"\n[source]\nuri = "file://{tmp_path}/clip.mp4"\n'
                      f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n')
    result = _doctor_cli("--config", str(config), "--timeout", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("[FAIL] broker") and f"127.0.0.1:{port}" in line for line in lines), result.stdout
    assert any(line.startswith("[ OK ] config") for line in lines)
    assert "Traceback" not in result.stderr


def test_cli_names_a_bad_config_in_one_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[mqtt]\nprot = 1883\n")
    result = _doctor_cli("--config", str(config))
    assert result.returncode == 1
    assert any(line.startswith("[FAIL] config") and "mqtt.prot" in line for line in result.stdout.splitlines())
    assert "Traceback" not in result.stderr


def test_v4l2_by_number_and_gst_allow_list(tmp_path):
    paths = fake_paths(tmp_path)
    (paths.dev / "video0").write_bytes(b"")  # stands in for the camera node (readable and writable here)
    check = doctor.check_camera("v4l2://0", paths)
    assert check.status == OK and str(paths.dev / "video0") in check.detail, check
    assert doctor.check_camera("v4l2://3", paths).status == FAIL
    refused = doctor.check_camera("gst://v4l2src ! tee name=t ! queue ! udpsink host=10.0.0.9", paths)
    assert refused.status == FAIL and "'tee'" in refused.detail, refused
    allowed = doctor.check_camera("gst://v4l2src device=/dev/video0 ! videoconvert ! appsink", paths)
    assert allowed.status == OK, allowed


def test_broker_publishes_to_the_cameras_topic_and_reads_the_puback(secure_broker):
    cert, key = secure_broker.cert_for("cam1")
    tls = {"ca": secure_broker.ca_path, "cert": cert, "key": key}
    own = doctor.check_broker(_mqtt_cfg(host="localhost", port=secure_broker.tls_port, tls=tls), "cam1")
    assert own.status == OK and "publish to edgeanon/cam1/doctor acknowledged" in own.detail, own
    # cam1's certificate, configured as camera cam2: the connection works, the ACL refuses the write.
    other = doctor.check_broker(_mqtt_cfg(host="localhost", port=secure_broker.tls_port, tls=tls), "cam2")
    assert other.status == FAIL and "refused a publish to edgeanon/cam2/doctor" in other.detail, other
    assert "Not authorized" in other.detail


def test_broker_warns_about_tls_insecure(secure_broker):
    cert, key = secure_broker.cert_for("cam1")
    tls = {"ca": secure_broker.ca_path, "cert": cert, "key": key, "insecure": True}
    check = doctor.check_broker(_mqtt_cfg(host="localhost", port=secure_broker.tls_port, tls=tls), "cam1")
    assert check.status == WARN and "mqtt.tls.insecure = true" in check.detail, check


def test_broker_uses_the_daemons_client_and_its_protocol(mosquitto_broker):
    """The daemon's client factory: MQTT 3.1.1 when the config says so (mosquitto logs it as p2)."""
    check = doctor.check_broker(_mqtt_cfg(host="127.0.0.1", port=mosquitto_broker.port, protocol="3.1.1"), "cam1")
    assert check.status == WARN and "MQTT 3.1.1" in check.detail, check
    connects = [line for line in mosquitto_broker.log_tail(20000).splitlines() if "as edgeanon-doctor-cam1" in line]
    assert connects and all("(p2," in line for line in connects), connects


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "soon"])
def test_cli_refuses_a_bad_timeout(value):
    result = _doctor_cli("--timeout", value)
    assert result.returncode == 2 and "--timeout" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_cli_output_holds_no_credentials(tmp_path):
    config = tmp_path / "cam1.toml"
    config.write_text('camera_id = "cam1"\n[source]\nuri = "rstp://admin:p@ss@10.0.0.5/stream"\n'
                      '[mqtt]\nusername = "cam1"\npassword = 123456\n')
    result = _doctor_cli("--config", str(config), "--timeout", "1")
    assert result.returncode == 1 and "[FAIL] config" in result.stdout, result.stdout
    output = result.stdout + result.stderr
    for secret in ("p@ss", "123456", "admin:"):
        assert secret not in output, output


def test_network_allow_list_of_the_installed_unit(tmp_path):
    """The drop-in deploy/install.sh writes must let the daemon reach the broker and the RTSP camera."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text(JP6)
    subprocess.run([str(REPO / "deploy/install.sh"), "--dry-run", "--root", str(root), "--camera", "door",
                    "--broker", "10.1.2.3"], check=True, capture_output=True, timeout=120)
    units = root / "etc/systemd/system"
    paths = dataclasses.replace(fake_paths(tmp_path), units=(units / "edgeanon@.service",), unit_dir=units)

    def cfg(host: str, uri: str = "csi://0"):
        return config_from_dict({"camera_id": "door", "source": {"uri": uri}, "mqtt": {"host": host}})

    ok = doctor.check_network(cfg("10.1.2.3"), paths)
    assert ok.status == OK and "broker 10.1.2.3" in ok.detail, ok
    assert doctor.check_network(cfg("127.0.0.1"), paths).status == OK  # localhost is always allowed
    moved = doctor.check_network(cfg("10.1.2.4"), paths)
    assert moved.status == FAIL and "10.1.2.4" in moved.detail and "network.conf" in moved.detail, moved
    camera = doctor.check_network(cfg("10.1.2.3", "rtsp://u:p@192.168.7.20/live"), paths)
    assert camera.status == FAIL and "camera 192.168.7.20" in camera.detail, camera
    other = doctor.check_network(dataclasses.replace(cfg("10.1.2.3"), camera_id="porch"), paths)
    assert other.status == FAIL, "another camera's drop-in is not this one's"
    open_unit = tmp_path / "open.service"
    open_unit.write_text("[Service]\nExecStart=/bin/true\n")
    assert doctor.check_network(cfg("10.1.2.3"), dataclasses.replace(paths, units=(open_unit,))).status == WARN


def test_ip_allow_list_follows_systemd_rules():
    deny, allowed = doctor.ip_allow_list(["IPAddressDeny=any\nIPAddressAllow=localhost 10.0.0.0/8",
                                          "[Service]\nIPAddressAllow=\nIPAddressAllow=192.168.1.5"])
    assert deny and [str(n) for n in allowed] == ["192.168.1.5/32"]


def test_core_dump_settings_are_reported(tmp_path):
    """doctor says what keeps raw frames out of core dumps: the unit's LimitCORE=0, RLIMIT_CORE 0 and not
    dumpable as the daemon sets them (tried in a real child process), and the kernel's core_pattern."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    no_unit = doctor.check_core_dumps(fake_paths(tmp_path))
    assert no_unit.status == OK and "RLIMIT_CORE 0/0, dumpable no" in no_unit.detail, no_unit
    assert repr(pattern) in no_unit.detail and "not installed" in no_unit.detail
    old_unit = tmp_path / "old.service"
    old_unit.write_text("\n".join(line for line in UNIT.read_text().splitlines() if "LimitCORE" not in line))
    old = doctor.check_core_dumps(dataclasses.replace(fake_paths(tmp_path), units=(old_unit,)))
    assert old.status == WARN and "no LimitCORE=0" in old.detail, old
    current = doctor.check_core_dumps(dataclasses.replace(fake_paths(tmp_path), units=(UNIT,)))
    assert current.status == OK and "LimitCORE=0" in current.detail, current
    cli = _doctor_cli()
    line = next(line for line in cli.stdout.splitlines() if "core dumps" in line)
    assert line.startswith("[ OK ]") and "RLIMIT_CORE 0/0, dumpable no" in line and "core_pattern" in line, line


def test_rtsp_passwords_with_uri_characters(tmp_path):
    """Before: 'Port could not be cast to integer value as ...' (a piece of the password) as a traceback."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        fine = doctor.check_camera(f"rtsp://admin:Qa1@Wb2:Ec3@127.0.0.1:{port}/s", fake_paths(tmp_path))
        encoded = doctor.check_camera(f"rtsp://admin:Qa1%2FWb2%23@127.0.0.1:{port}/s", fake_paths(tmp_path))
    assert fine.status == encoded.status == OK and f"rtsp://127.0.0.1:{port}" in fine.detail, (fine, encoded)
    raw = doctor.check_camera(f"rtsp://admin:12/Wb2#Ec3@127.0.0.1:{port}/s", fake_paths(tmp_path))
    assert raw.status == FAIL and "percent-encode" in raw.detail and "Wb2" not in raw.detail, raw


def test_cli_checks_every_camera_of_a_device_config(tmp_path, mosquitto_broker):
    """[[cameras]]: a source, network and broker line per camera, each named; one broken camera fails the check."""
    present = tmp_path / "present.avi"
    present.write_bytes(b"x")
    config = tmp_path / "edgeanon.toml"
    config.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto_broker.port}\n'
                      f'[[cameras]]\ncamera_id = "door"\n[cameras.source]\nuri = "file://{present}"\n'
                      f'[[cameras]]\ncamera_id = "yard"\n[cameras.source]\nuri = "file://{tmp_path}/gone.avi"\n')
    result = _doctor_cli("--config", str(config), "--timeout", "5")
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert any(line.startswith("[ OK ] camera door") for line in lines), result.stdout
    assert any(line.startswith("[FAIL] camera yard") and "file not found" in line for line in lines), result.stdout
    for camera in ("door", "yard"):  # each camera's own topic, acknowledged by the real broker
        assert any(line.startswith(f"[WARN] broker {camera}") and f"edgeanon/{camera}/doctor acknowledged" in line
                   for line in lines), result.stdout
    assert sum(line.startswith("[") and line.split("]")[1].split()[0] == "network" for line in lines) == 2
