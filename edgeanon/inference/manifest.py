"""TensorRT engine sidecar manifests: what an engine was built from and for, and whether it may run here.

An engine is tied to its TensorRT version, GPU and JetPack (L4T) release, and to the ONNX file it was
built from. The manifest sits beside the engine (`detector.engine` -> `detector.engine.json`); the engine
file itself stays untouched so trtexec and DeepStream still load it. The engine naming rule lives here too:
one engine per model, named after it, whatever the precision (the manifest records the precision).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edgeanon.atomic import atomic_path
from edgeanon.inference.errors import ModelError, StaleEngineError

MANIFEST_FORMAT = 1
REQUIRED_KEYS = (
    "format", "engine_sha256", "onnx_file", "onnx_sha256", "precision", "tensorrt_version",
    "cuda_version", "l4t_release", "jetpack_version", "device_name", "profiles",
)

# L4T release -> JetPack, for the manifest's human-readable field (the check compares L4T itself).
_JETPACK_FOR_L4T = {
    "35.1": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
    "35.6.0": "5.1.4", "35.6.1": "5.1.5", "36.2.0": "6.0 DP", "36.3.0": "6.0", "36.4.0": "6.1",
    "36.4.3": "6.2", "36.4.4": "6.2.1", "38.2.0": "7.0",
}


@dataclass(frozen=True)
class DeviceEnvironment:
    """What an engine is tied to on the machine that builds or runs it."""

    tensorrt_version: str
    cuda_version: str
    device_name: str
    l4t_release: str = "none"  # "35.3.1" on a Jetson, "none" elsewhere
    jetpack_version: str = "none"


@dataclass(frozen=True)
class EngineManifest:
    """The sidecar record of one engine build."""

    engine_sha256: str
    onnx_file: str  # name relative to the engine's folder
    onnx_sha256: str
    precision: str  # int8 (from the QDQ model) | fp16 | fp32
    tensorrt_version: str
    cuda_version: str
    device_name: str
    l4t_release: str
    jetpack_version: str
    profiles: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # input -> min/opt/max shape
    built_at: str = ""
    workspace_mib: int = 0
    onnx_metadata: dict[str, str] = field(default_factory=dict)  # the source model's properties (latent, input)
    format: int = MANIFEST_FORMAT

    @property
    def environment(self) -> DeviceEnvironment:
        return DeviceEnvironment(self.tensorrt_version, self.cuda_version, self.device_name,
                                 self.l4t_release, self.jetpack_version)

    def to_dict(self) -> dict:
        return asdict(self)


ENGINE_SUFFIX = ".engine"


def model_name(path: str | Path) -> str:
    """The model a file belongs to: detector.onnx, detector.int8-trt.onnx, detector.engine -> 'detector'."""
    return Path(path).name.split(".")[0]


def engine_name(model: str) -> str:
    """The engine file name of a model: 'detector' -> 'detector.engine'."""
    return f"{model}{ENGINE_SUFFIX}"


def engine_beside(path: str | Path) -> Path:
    """The TensorRT engine built from a model file: detector.engine beside detector.onnx, detector.int8.onnx..."""
    path = Path(path)
    return path.with_name(engine_name(model_name(path)))


def manifest_path(engine_path: str | Path) -> Path:
    """The sidecar manifest's path for an engine file."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def parse_l4t_release(text: str) -> str:
    """'# R35 (release), REVISION: 3.1, ...' (from /etc/nv_tegra_release) -> '35.3.1'; 'none' if unparsable."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{match.group(1)}.{match.group(2)}" if match else "none"


def jetpack_for_l4t(l4t: str) -> str:
    """Best-effort JetPack version name for an L4T release ('unknown' when not in the table)."""
    if l4t == "none":
        return "none"
    return _JETPACK_FOR_L4T.get(l4t, "unknown")


def read_l4t_release(path: str | Path = "/etc/nv_tegra_release") -> str:
    """This machine's L4T release, or 'none' off a Jetson."""
    try:
        return parse_l4t_release(Path(path).read_text(errors="replace"))
    except OSError:
        return "none"


def write_manifest(engine_path: str | Path, manifest: EngineManifest) -> Path:
    """Write the manifest beside the engine (temp name, then rename)."""
    dest = manifest_path(engine_path)
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    return dest


def read_manifest(engine_path: str | Path) -> EngineManifest:
    """Read and validate an engine's manifest; ModelError (with the rebuild command) if missing or bad."""
    engine_path = Path(engine_path)
    path = manifest_path(engine_path)
    if not path.is_file():
        raise StaleEngineError(
            f"{engine_path}: no manifest {path.name} beside it, so it cannot be checked against this "
            f"device; rebuild it: {rebuild_command(engine_path)}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StaleEngineError(f"{path}: unreadable manifest ({exc}); rebuild: {rebuild_command(engine_path)}") from exc
    if not isinstance(data, dict):
        raise StaleEngineError(f"{path}: manifest is not a JSON object; rebuild: {rebuild_command(engine_path)}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise StaleEngineError(f"{path}: manifest lacks {', '.join(missing)}; rebuild: {rebuild_command(engine_path)}")
    if data["format"] != MANIFEST_FORMAT:
        raise StaleEngineError(f"{path}: manifest format {data['format']} (expected {MANIFEST_FORMAT}); "
                               f"rebuild: {rebuild_command(engine_path)}")
    known = {f.name for f in fields(EngineManifest)}
    return EngineManifest(**{k: v for k, v in data.items() if k in known})


def staleness_problems(manifest: EngineManifest, env: DeviceEnvironment, onnx_sha256: str | None,
                       engine_sha256: str | None = None) -> list[str]:
    """Why an engine may not run here (empty list: it may). Pure: callers pass the hashes and environment.

    `onnx_sha256` None means the ONNX source is not present to compare against (not a problem by itself).
    """
    problems = []
    if engine_sha256 is not None and engine_sha256 != manifest.engine_sha256:
        problems.append("the engine file changed since it was built (sha256 differs from its manifest)")
    if onnx_sha256 is not None and onnx_sha256 != manifest.onnx_sha256:
        problems.append(f"stale: {manifest.onnx_file} changed since the engine was built from it")
    if manifest.tensorrt_version != env.tensorrt_version:
        problems.append(f"foreign: built with TensorRT {manifest.tensorrt_version}, this device has "
                        f"TensorRT {env.tensorrt_version}")
    if manifest.l4t_release != env.l4t_release:
        problems.append(f"foreign: built on L4T {manifest.l4t_release} (JetPack {manifest.jetpack_version}), "
                        f"this device runs L4T {env.l4t_release} (JetPack {env.jetpack_version})")
    if manifest.device_name != env.device_name:
        problems.append(f"foreign: built for GPU {manifest.device_name!r}, this device has {env.device_name!r}")
    return problems


def rebuild_command(engine_path: str | Path, manifest: EngineManifest | None = None) -> str:
    """The command that rebuilds an engine on this device."""
    engine_path = Path(engine_path)
    model = model_name(engine_path)
    precision = f" --precision {manifest.precision}" if manifest else ""
    source = f" --onnx {engine_path.parent / manifest.onnx_file}" if manifest else ""
    return f"edgeanon engines --model {model}{precision}{source} --out {engine_path.parent}"


def check_engine(engine_path: str | Path, env: DeviceEnvironment, verify_engine_hash: bool = True) -> EngineManifest:
    """Refuse a stale or foreign engine with one clear line saying why and how to rebuild; else its manifest."""
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        raise ModelError(f"{engine_path}: engine file not found")
    manifest = read_manifest(engine_path)
    onnx = engine_path.parent / manifest.onnx_file
    onnx_sha = sha256_file(onnx) if onnx.is_file() else None
    engine_sha = sha256_file(engine_path) if verify_engine_hash else None
    problems = staleness_problems(manifest, env, onnx_sha, engine_sha)
    if problems:
        raise StaleEngineError(f"{engine_path}: refusing to load: {'; '.join(problems)}; rebuild it on this device: "
                               f"{rebuild_command(engine_path, manifest)}")
    return manifest
