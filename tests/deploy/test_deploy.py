"""Deployment: systemd units (verify, exposure score), shellcheck, install.sh dry runs, engines.sh, pins."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edgeanon.inference.trt import tensorrt_available

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"
ENGINES_SH = REPO / "deploy" / "engines.sh"
UNITS = ("edgeanon@.service", "edgeanon.service", "edgeanon-engines.service")
MAX_EXPOSURE = 2.0
JP6 = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 2025\n"
JP5 = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 2023\n"

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not Path("/usr/lib/systemd/system").is_dir(),
    reason="systemd-analyze or /usr/lib/systemd/system missing")


def install(root: Path, *args: str, release: str | None = JP6, check: bool = True) -> subprocess.CompletedProcess:
    """deploy/install.sh --dry-run --root ROOT ARGS, on a fake Jetson (or not, with release=None)."""
    if release is not None:
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc" / "nv_tegra_release").write_text(release)
    result = subprocess.run([str(INSTALL), "--dry-run", "--root", str(root), *args],
                            capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root -> its kind, mode and content hash (or link target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            out[rel] = f"link {os.readlink(path)}"
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = f"dir {oct(st.st_mode & 0o7777)}"
        else:
            out[rel] = f"file {oct(st.st_mode & 0o7777)} {hashlib.sha256(path.read_bytes()).hexdigest()}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("root")
    result = install(root, "--camera", "front-door")
    return root, result.stdout


# -- systemd ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def verify_root(installed, tmp_path_factory) -> Path:
    """The dry-run tree plus what a real system has: systemd's own units and the venv's executables."""
    src, _ = installed
    root = tmp_path_factory.mktemp("verify")
    shutil.copytree(src, root, symlinks=True, dirs_exist_ok=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for exe in ("edgeanon", "python"):  # the dry run plans the venv; a real install makes these
        path = root / "opt/edgeanon/.venv/bin" / exe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return root


def analyze_verify(root: Path, *units: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", *units],
                          capture_output=True, text=True, timeout=120)


@needs_systemd_analyze
def test_units_verify_clean(verify_root):
    result = analyze_verify(verify_root, "edgeanon@front-door.service", "edgeanon.service", "edgeanon-engines.service")
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


@needs_systemd_analyze
def test_verify_runs_for_real(verify_root, tmp_path):
    """The clean verify above means something: a missing executable or a bad value is reported."""
    root = tmp_path / "broken"
    shutil.copytree(verify_root, root, symlinks=True)
    (root / "opt/edgeanon/.venv/bin/edgeanon").unlink()
    unit = root / "etc/systemd/system/edgeanon-engines.service"
    unit.write_text(unit.read_text().replace("TimeoutStartSec=20min", "TimeoutStartSec=soon"))
    result = analyze_verify(root, "edgeanon@front-door.service", "edgeanon-engines.service")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "/opt/edgeanon/.venv/bin/edgeanon is not executable" in output, output
    assert "TimeoutStartSec" in output or "soon" in output, output


def exposure(unit: Path) -> float:
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


@needs_systemd_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_exposure_score(unit):
    score = exposure(REPO / "systemd" / unit)
    assert score <= MAX_EXPOSURE, f"{unit}: exposure {score} > {MAX_EXPOSURE}"


def unit_settings(unit: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (REPO / "systemd" / unit).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_daemon_unit_contract():
    s = unit_settings("edgeanon@.service")
    assert s["ExecStart"] == ["/opt/edgeanon/.venv/bin/edgeanon run --config /etc/edgeanon/%i.toml"]
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"] and "WatchdogSec" in s
    assert s["User"] == ["edgeanon"] and s["SupplementaryGroups"] == ["video"]
    assert s["ProtectSystem"] == ["strict"] and s["DevicePolicy"] == ["closed"]
    assert "PrivateDevices" not in s and s["PrivateTmp"] == ["yes"]
    assert s["BindPaths"] == ["-/tmp/argus_socket"]  # the CSI camera's socket, from the host's /tmp
    assert s["IPAddressDeny"] == ["any"] and s["IPAddressAllow"] == ["localhost"]  # the broker: a drop-in
    assert s["MemoryMax"] == ["2G"] and "MemoryHigh" in s and s["TasksMax"] == ["128"]
    assert {"char-video4linux rw", "/dev/nvmap rw", "char-nvhost-* rw"} <= set(s["DeviceAllow"])
    assert "edgeanon-engines.service" in s["After"][0] and "StartLimitBurst" in s
    engines = unit_settings("edgeanon-engines.service")
    assert engines["Type"] == ["oneshot"] and engines["NotifyAccess"] == ["main"]
    assert engines["ExecCondition"] == ["/opt/edgeanon/app/deploy/engines.sh stale"]
    # The models' owner builds the engines; no StateDirectory=edgeanon (it would chown the models to it).
    assert engines["User"] == ["edgeanon-models"] and "StateDirectory" not in engines
    assert engines["ReadWritePaths"] == ["/var/lib/edgeanon/models"]
    assert s["ReadOnlyPaths"] == ["-/var/lib/edgeanon/models"]
    # No core dump: it would hold raw frames (the watchdog kills with SIGABRT). The daemon sets it too.
    assert s["LimitCORE"] == ["0"]


def test_device_unit_is_the_template_for_every_camera_at_once():
    """edgeanon.service: the whole device's config, the template's sandbox, more memory and tasks for N cameras."""
    device, template = unit_settings("edgeanon.service"), unit_settings("edgeanon@.service")
    assert device["ExecStart"] == ["/opt/edgeanon/.venv/bin/edgeanon run --config /etc/edgeanon/edgeanon.toml"]
    assert device["AssertPathExists"] == ["/etc/edgeanon/edgeanon.toml"]
    differ = {k for k in device.keys() | template.keys() if device.get(k) != template.get(k)}
    assert differ == {"Description", "AssertPathExists", "ExecStart", "MemoryHigh", "MemoryMax", "TasksMax"}, differ
    assert device["MemoryMax"] == ["4G"] and device["TasksMax"] == ["512"]


def test_uninstall_removes_the_device_unit(tmp_path):
    install(tmp_path, "--camera", "door")
    units = tmp_path / "etc/systemd/system"
    assert (units / "edgeanon.service").is_file()
    assert not (units / "multi-user.target.wants/edgeanon.service").exists(), "installed, not enabled"
    install(tmp_path, "--uninstall")
    assert not (units / "edgeanon.service").exists()


# -- shell ------------------------------------------------------------------------------------------

def shell_scripts() -> list[Path]:
    """The project's shell scripts: what git tracks or would track (scratch output under ignored folders is not)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.sh"], cwd=REPO,
                            capture_output=True, text=True)
    if listed.returncode == 0:
        return sorted(REPO / line for line in listed.stdout.splitlines() if (REPO / line).is_file())
    skip = {".venv", ".git", "node_modules", "build", "out"}
    return sorted(p for p in REPO.rglob("*.sh") if not skip & set(p.relative_to(REPO).parts))


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck missing")
def test_shellcheck_every_script():
    scripts = shell_scripts()
    assert INSTALL in scripts and ENGINES_SH in scripts
    result = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# -- install.sh -------------------------------------------------------------------------------------

def test_dry_run_lays_out_the_tree(installed):
    root, out = installed
    for unit in UNITS:
        assert (root / "etc/systemd/system" / unit).read_text() == (REPO / "systemd" / unit).read_text()
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "edgeanon@front-door.service") == "/etc/systemd/system/edgeanon@.service"
    assert (wants / "edgeanon-engines.service").is_symlink()

    config = root / "etc/edgeanon/front-door.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert tomllib.loads(config.read_text())["camera_id"] == "front-door"

    assert (root / "var/lib/edgeanon/models").is_dir() and (root / "var/cache/edgeanon").is_dir()
    for model in (REPO / "models").glob("*.onnx"):
        assert (root / "var/lib/edgeanon/models" / model.name).read_bytes() == model.read_bytes()
    app = root / "opt/edgeanon/app"
    assert (app / "edgeanon/cli.py").is_file() and (app / "requirements-jetson.txt").is_file()
    assert not (app / "export").exists()  # the host toolkit stays behind: the device builds with `edgeanon engines`
    assert os.access(app / "deploy/engines.sh", os.X_OK)
    assert not list(app.rglob("__pycache__"))

    # The system itself is only planned: user, venv, pip, ownership, systemd reload.
    assert "would run: python3 -m venv --system-site-packages /opt/edgeanon/.venv" in out
    pip = "/opt/edgeanon/.venv/bin/python -m pip"
    assert f"would run: {pip} install -r /opt/edgeanon/app/requirements-jetson.txt" in out
    assert "--no-deps" in out and "would run: useradd --system" in out and "usermod -a -G video edgeanon" in out
    assert "would run: systemctl daemon-reload" in out
    assert "L4T R36.4.3 (JetPack 6)" in out
    assert not (root / "opt/edgeanon/.venv").exists()


def test_models_belong_to_their_own_user_not_the_daemons(installed):
    _, out = installed
    assert "would run: useradd --system --user-group --home-dir /var/lib/edgeanon/models" in out
    assert "would run: chown -R edgeanon-models:edgeanon-models /var/lib/edgeanon/models" in out
    assert "would run: chown edgeanon:edgeanon /var/lib/edgeanon /var/cache/edgeanon" in out
    assert "chown -R edgeanon:edgeanon" not in out


def dropin(root: Path, camera: str) -> list[str]:
    text = (root / f"etc/systemd/system/edgeanon@{camera}.service.d/network.conf").read_text()
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("IPAddressAllow=")]


def test_network_dropin_allows_the_broker_camera_and_dns_only(tmp_path):
    install(tmp_path, "--camera", "door", "--broker", "10.1.2.3")
    assert dropin(tmp_path, "door") == ["10.1.2.3"]
    config = tmp_path / "etc/edgeanon/door.toml"
    text = config.read_text()
    config.write_text(re.sub(r'(?m)^uri = .*$', 'uri = "rtsp://admin:p@ss@192.168.7.20:554/live"', text))
    install(tmp_path, "--camera", "door")
    assert dropin(tmp_path, "door") == ["10.1.2.3", "192.168.7.20"]
    # The host is read as edgeanon reads it: after the last '@', even when the password holds '/' or '#'.
    config.write_text(re.sub(r'(?m)^uri = .*$', 'uri = "rtsp://admin:10.6.6.6/#@192.168.7.21/live"', text))
    install(tmp_path, "--camera", "door")
    assert dropin(tmp_path, "door") == ["10.1.2.3", "192.168.7.21"]
    # Names: resolved here (localhost needs no entry), DNS servers added; a name that does not resolve is named.
    (tmp_path / "etc/resolv.conf").write_text("nameserver 127.0.0.53\nnameserver 10.9.9.9\n")
    config.write_text(re.sub(r'(?m)^host = .*$', 'host = "broker.invalid"', config.read_text()))
    result = install(tmp_path, "--camera", "door")
    assert dropin(tmp_path, "door") == ["10.9.9.9", "192.168.7.21"]
    assert "broker.invalid does not resolve" in result.stderr and "p@ss" not in result.stdout + result.stderr


@needs_systemd_analyze
def test_units_with_the_network_dropin_verify_clean(tmp_path):
    root = tmp_path / "root"
    install(root, "--camera", "door", "--broker", "10.1.2.3")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for exe in ("edgeanon", "python"):
        path = root / "opt/edgeanon/.venv/bin" / exe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    result = analyze_verify(root, "edgeanon@door.service", "edgeanon-engines.service")
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
    installed = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", f"--root={root}",
                                "edgeanon@door.service"], capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", installed.stdout + installed.stderr)
    assert match and float(match.group(1)) <= MAX_EXPOSURE, installed.stdout + installed.stderr
    assert "non-localhost entries" in installed.stdout  # the drop-in was read: the broker is allowed


def test_second_run_changes_nothing_and_keeps_an_edited_config(tmp_path):
    install(tmp_path, "--camera", "cam1")
    first = snapshot(tmp_path)
    install(tmp_path, "--camera", "cam1")
    assert snapshot(tmp_path) == first
    config = tmp_path / "etc/edgeanon/cam1.toml"
    config.write_text(config.read_text() + "\n# site note\n")
    edited = config.read_text()
    install(tmp_path, "--camera", "cam1")
    assert config.read_text() == edited


def test_tls_dir_and_broker_make_a_ready_config(tmp_path):
    pki = tmp_path / "pki"
    subprocess.run([str(REPO / "deploy/certs.sh"), "--dir", str(pki), "ca"], check=True, capture_output=True)
    subprocess.run([str(REPO / "deploy/certs.sh"), "--dir", str(pki), "device", "door"], check=True,
                   capture_output=True)
    root = tmp_path / "root"
    install(root, "--camera", "door", "--broker", "broker.site1.lan", "--tls-dir", str(pki))
    cfg = tomllib.loads((root / "etc/edgeanon/door.toml").read_text())
    assert cfg["mqtt"]["host"] == "broker.site1.lan" and cfg["mqtt"]["port"] == 8883
    assert cfg["mqtt"]["tls"] == {"ca": "/etc/edgeanon/tls/ca.crt", "cert": "/etc/edgeanon/tls/door.crt",
                                  "key": "/etc/edgeanon/tls/door.key", "insecure": False}
    key = root / "etc/edgeanon/tls/door.key"
    assert key.read_bytes() == (pki / "door.key").read_bytes() and stat.S_IMODE(key.stat().st_mode) == 0o640


def test_uninstall_and_purge(tmp_path):
    install(tmp_path, "--camera", "cam1")
    install(tmp_path, "--camera", "cam2")
    result = install(tmp_path, "--uninstall")
    units = tmp_path / "etc/systemd/system"
    assert not (units / "edgeanon@.service").exists() and not (units / "edgeanon-engines.service").exists()
    assert not list(units.rglob("edgeanon*"))  # no dangling enablement links
    assert not (tmp_path / "opt/edgeanon").exists() and not (tmp_path / "var/cache/edgeanon").exists()
    assert (tmp_path / "etc/edgeanon/cam1.toml").is_file() and (tmp_path / "var/lib/edgeanon/models").is_dir()
    assert "would run: userdel" not in result.stdout
    result = install(tmp_path, "--uninstall", "--purge")
    assert not (tmp_path / "etc/edgeanon").exists() and not (tmp_path / "var/lib/edgeanon").exists()
    assert "would run: userdel edgeanon\n" in result.stdout and "would run: userdel edgeanon-models" in result.stdout


def test_jetpack5_plans_python310(tmp_path):
    out = install(tmp_path, release=JP5).stdout
    assert "JetPack 5" in out and "would run: python3.10 -m venv --system-site-packages" in out


def test_generic_linux_uses_requirements_txt(tmp_path):
    result = install(tmp_path, release=None)
    assert "not a Jetson" in result.stderr
    assert "pip install -r /opt/edgeanon/app/requirements.txt" in result.stdout


@pytest.mark.parametrize("args, release, message", [
    ((), "# R32 (release), REVISION: 7.4, GCID: 1, BOARD: t210ref\n", "L4T R32.7.4"),
    (("--camera", "a/b"), JP6, "--camera 'a/b'"),
    (("--bogus",), JP6, "unknown option '--bogus'"),
    (("--purge",), JP6, "--purge goes with --uninstall"),
    (("--tls-dir", "/nonexistent"), JP6, "ca.crt missing"),
])
def test_user_errors_are_one_clear_line(tmp_path, args, release, message):
    result = install(tmp_path, *args, release=release, check=False)
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help():
    result = subprocess.run([str(INSTALL), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--dry-run" in result.stdout and "--uninstall" in result.stdout


def test_real_install_needs_root_or_dry_run(tmp_path):
    if os.geteuid() == 0:
        result = subprocess.run([str(INSTALL), "--root", str(tmp_path)], capture_output=True, text=True)
        assert result.returncode != 0 and "--root is only for --dry-run" in result.stderr
    else:
        result = subprocess.run([str(INSTALL)], capture_output=True, text=True)
        assert result.returncode != 0 and "run as root" in result.stderr


# -- engines.sh -------------------------------------------------------------------------------------

def engines_env(tmp_path: Path, trt_version: str | None) -> dict[str, str]:
    """engines.sh pointed at a fake venv python that 'imports' TensorRT `trt_version` (None: fails)."""
    python = tmp_path / "python"
    body = f"echo {trt_version}" if trt_version else "exit 1"
    python.write_text(f"#!/bin/sh\n{body}\n")
    python.chmod(0o755)
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    release = tmp_path / "nv_tegra_release"
    if not release.exists():
        release.write_text(JP6)
    return {**os.environ, "EDGEANON_PYTHON": str(python), "EDGEANON_MODELS": str(models),
            "EDGEANON_TEGRA_RELEASE": str(release)}


def engines(cmd: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(ENGINES_SH), cmd], env=env, capture_output=True, text=True, timeout=60)


def test_engines_stale_follows_models_tensorrt_and_jetpack(tmp_path):
    env = engines_env(tmp_path, "10.3.0")
    assert engines("stale", env).returncode == 1  # no models: nothing to build
    (tmp_path / "models/detector.onnx").write_bytes(b"model v1")
    assert engines("stale", env).returncode == 0  # never built
    assert engines("stamp", env).returncode == 0  # what ExecStartPost= does after a good build
    fresh = engines("stale", env)
    assert fresh.returncode == 1 and "fresh" in fresh.stderr
    (tmp_path / "models/detector.onnx").write_bytes(b"model v2")
    assert engines("stale", env).returncode == 0  # new model
    engines("stamp", env)
    (tmp_path / "nv_tegra_release").write_text(JP6.replace("REVISION: 4.3", "REVISION: 4.4"))
    assert engines("stale", env).returncode == 0  # JetPack upgrade
    engines("stamp", env)
    assert engines("stale", engines_env(tmp_path, "10.7.0")).returncode == 0  # TensorRT upgrade


def test_engines_skip_without_tensorrt(tmp_path):
    env = engines_env(tmp_path, None)
    (tmp_path / "models/detector.onnx").write_bytes(b"model")
    result = engines("stale", env)
    assert result.returncode == 1 and "ONNX Runtime" in result.stderr


# -- requirements-jetson.txt ------------------------------------------------------------------------

def jetson_requirements(kernel: str) -> dict[str, str]:
    """Requirement name -> specifier that pip would install on a Jetson with this kernel release."""
    from packaging.requirements import Requirement

    env = {"platform_machine": "aarch64", "platform_release": kernel, "python_version": "3.10"}
    out = {}
    for line in (REPO / "requirements-jetson.txt").read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            assert req.name not in out, f"{req.name} selected twice for {kernel}"
            out[req.name] = str(req.specifier)
    return out


def test_jetson_pins_follow_the_jetpack():
    jp5 = jetson_requirements("5.10.192-tegra")
    jp6 = jetson_requirements("5.15.148-tegra")
    assert jp5["cuda-python"].startswith(("<11", ">=11")) and "<11.9" in jp5["cuda-python"]
    assert "<12.7" in jp6["cuda-python"] and ">=12.2" in jp6["cuda-python"]
    assert "opencv-python-headless" in jp5 and "opencv-python-headless" not in jp6  # JetPack 6: system cv2
    assert "tensorrt" not in jp5 and "tensorrt" not in jp6  # always JetPack's own
    assert "<2" in jp6["numpy"] and "paho-mqtt" in jp6 and "onnxruntime" in jp6


def test_engines_build_runs_the_runtimes_builder(installed, tmp_path):
    """`engines.sh build` reaches `edgeanon engines` of the installed app, with arguments it accepts (TensorRT is
    absent here)."""
    if tensorrt_available():
        pytest.skip("TensorRT is installed here: a real build would start")
    root, _ = installed
    models = tmp_path / "models"
    models.mkdir()
    (models / "detector.onnx").write_bytes(b"not built here")
    env = {**os.environ, "EDGEANON_PREFIX": str(root / "opt/edgeanon"), "EDGEANON_PYTHON": sys.executable,
           "EDGEANON_MODELS": str(models), "PYTHONPATH": ""}  # the installed copy, not this checkout
    result = engines("build", env)
    assert result.returncode == 2
    assert "usage:" not in result.stderr and "TensorRT is not installed" in result.stderr, result.stderr
    assert "edgeanon.commands.engines" in result.stderr  # the runtime's command, no export/ on the device


def test_verify_on_device_script_refuses_without_tensorrt():
    if tensorrt_available():
        pytest.skip("TensorRT runs here: the script would build real engines")
    result = subprocess.run(["sh", str(REPO / "deploy" / "verify-on-device.sh")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "TensorRT does not import" in result.stderr
