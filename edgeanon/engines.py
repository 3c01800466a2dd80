"""Build TensorRT engines on the device that will run them, with sidecar manifests (`edgeanon engines`).

One code path for TensorRT 8.5/8.6 (JetPack 5) and 10.x (JetPack 6/7). FP16 engines, and INT8 engines from the
symmetric QDQ model (explicit quantization: the scales are in the graph, no calibrator at build time), with the
layers the QDQ model leaves in float built in FP16. The build plan (flags, source model, FP16 fallback layers),
the optimization profiles (the daemon's detector input sizes, the generator's batch sizes), the timing cache
beside the engine and the file names are pure functions, tested with fakes where TensorRT does not run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeanon.anonymize.gan import MAX_BATCH
from edgeanon.atomic import atomic_path
from edgeanon.defaults import VIDEO_SCALING, Scaling
from edgeanon.detector import MULTIPLE
from edgeanon.inference.errors import ModelError
from edgeanon.inference.manifest import EngineManifest, sha256_file, write_manifest
from edgeanon.inference.ort import OrtBackend
from edgeanon.inference.trt import current_environment, parse_version
from edgeanon.systemd import Notifier

log = logging.getLogger(__name__)

PRECISIONS = ("int8", "fp16", "fp32")
# INT8 is the default: the TensorRT-flavour INT8 models pass their gates (`python -m export verify` on the host).
DEFAULT_PRECISION = "int8"
# Which ONNX variant each precision builds from, per TensorRT generation.
_SOURCE = {
    8: {"fp32": ".onnx", "fp16": ".onnx", "int8": ".int8-trt.onnx"},
    10: {"fp32": ".onnx", "fp16": ".fp16.onnx", "int8": ".int8-trt.onnx"},
}
DEFAULT_WORKSPACE_MIB = 1024
DEFAULT_DETECTOR_MIN = (320, 320)  # detector input width, height
DEFAULT_DETECTOR_MAX = (1920, 1080)
DEFAULT_CAMERA = (1280, 720)
BUILD_HEARTBEAT_S = 20.0
# min, opt, max faces per generator call: the runtime batches up to MAX_BATCH faces at once.
DEFAULT_GENERATOR_BATCH = (1, 4, MAX_BATCH)


class EngineBuildError(RuntimeError):
    """A user-fixable problem building an engine (wrong TensorRT, bad model, bad profile)."""


@dataclass(frozen=True)
class BuildPlan:
    """What to ask TensorRT for: network-creation flags, builder flags, source model, layers kept in FP16."""

    tensorrt_major: int
    network_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]
    source_suffix: str
    fp16_layers: tuple[str, ...] = ()  # ONNX nodes the QDQ model leaves in float: built in FP16


def plan_build(tensorrt_version: str, precision: str, fp16_layers: Sequence[str] = ()) -> BuildPlan:
    """Version-gated build decisions.

    INT8 always comes from the Q/DQ graph (explicit quantization, no calibrator), weakly typed with the INT8
    and FP16 flags so the layers the QDQ model leaves in float (`fp16_layers`) run in FP16, asked for layer by
    layer (PREFER_PRECISION_CONSTRAINTS). TensorRT 8.5/8.6 networks also need EXPLICIT_BATCH. FP16 and FP32:
    on 8.x from builder flags (weak typing); on 10+ STRONGLY_TYPED, the precision taken from the ONNX types
    (the fp16 ONNX for FP16), so no precision flags.
    """
    version = parse_version(tensorrt_version)
    if precision not in PRECISIONS:
        raise EngineBuildError(f"precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    if version[:2] < (8, 5):
        raise EngineBuildError(f"TensorRT {tensorrt_version} is too old: edgeanon needs 8.5 or newer (JetPack 5.1+)")
    major = 8 if version[0] < 10 else 10
    source = _SOURCE[major][precision]
    batch = ("EXPLICIT_BATCH",) if major == 8 else ()
    if precision == "int8":
        constraints = ("PREFER_PRECISION_CONSTRAINTS",) if fp16_layers else ()
        return BuildPlan(version[0], batch, ("INT8", "FP16", *constraints), source, tuple(fp16_layers))
    if major == 8:
        return BuildPlan(version[0], batch, ("FP16",) if precision == "fp16" else (), source)
    return BuildPlan(version[0], ("STRONGLY_TYPED",), (), source)


def choose_precision(requested: str, models_dir: Path, model: str, tensorrt_version: str) -> str:
    """`auto`: INT8 when the model's gated TensorRT-flavour QDQ file is there (`all` renames a failed one to
    *.rejected.onnx), else FP16. Any other precision is taken as asked."""
    if requested != "auto":
        return requested
    int8_source = source_onnx(models_dir, model, plan_build(tensorrt_version, "int8"))
    if int8_source.is_file():
        return "int8"
    log.warning("%s not found: building %s in FP16", int8_source, model)
    return "fp16"


def kept_float_layers(onnx_metadata: dict[str, str]) -> tuple[str, ...]:
    """The nodes a QDQ model left in float, from its `edgeanon.quantization` metadata (none if absent)."""
    try:
        info = json.loads(onnx_metadata.get("edgeanon.quantization", "{}"))
    except ValueError:
        return ()
    return tuple(info.get("kept_float", ())) if isinstance(info, dict) else ()


def source_onnx(models_dir: Path, model: str, plan: BuildPlan) -> Path:
    """detector + plan -> models/detector.onnx | detector.fp16.onnx | detector.int8-trt.onnx."""
    return Path(models_dir) / f"{model}{plan.source_suffix}"


def timing_cache_name(tensorrt_version: str, device_name: str) -> str:
    """A timing cache per TensorRT version and GPU: caches do not transfer between them."""
    safe = "".join(ch if ch.isalnum() else "-" for ch in device_name).strip("-").lower() or "gpu"
    return f"trt-timing-{tensorrt_version}-{safe}.cache"


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise EngineBuildError(f"size {text!r}: expected WIDTHxHEIGHT, e.g. 1280x720") from exc
    if w <= 0 or h <= 0:
        raise EngineBuildError(f"size {text!r}: width and height must be positive")
    return w, h


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def detector_dim_ranges(min_wh: tuple[int, int], opt_wh: tuple[int, int], max_wh: tuple[int, int],
                        batch: tuple[int, int, int] = (1, 1, 1)) -> dict[str, tuple[int, int, int]]:
    """Frame sizes -> min/opt/max of the detector's named dynamic dims, padded as the runtime pads them."""
    ws = [_round_up(s[0], MULTIPLE) for s in (min_wh, opt_wh, max_wh)]
    hs = [_round_up(s[1], MULTIPLE) for s in (min_wh, opt_wh, max_wh)]
    for name, values in (("width", ws), ("height", hs), ("batch", list(batch))):
        if not values[0] <= values[1] <= values[2]:
            raise EngineBuildError(f"profile {name}: need min <= opt <= max, got {values}")
    return {"batch": tuple(batch), "height": tuple(hs), "width": tuple(ws)}


def compute_profiles(input_shapes: dict[str, list[int | str]],
                     ranges: dict[str, tuple[int, int, int]]) -> dict[str, dict[str, list[int]]]:
    """Optimization-profile shapes for every input: fixed dims as they are, named dynamic dims from `ranges`."""
    profiles: dict[str, dict[str, list[int]]] = {}
    for name, dims in input_shapes.items():
        shape = {"min": [], "opt": [], "max": []}
        for dim in dims:
            if isinstance(dim, int) and dim > 0:
                lo = opt = hi = dim
            elif isinstance(dim, str) and dim in ranges:
                lo, opt, hi = ranges[dim]
            else:
                raise EngineBuildError(f"input {name}: dynamic dimension {dim!r} has no min/opt/max range "
                                       f"(known: {', '.join(sorted(ranges)) or 'none'})")
            shape["min"].append(int(lo))
            shape["opt"].append(int(opt))
            shape["max"].append(int(hi))
        profiles[name] = shape
    return profiles


def onnx_input_shapes(path: str | Path) -> dict[str, list[int | str]]:
    """Graph inputs of an ONNX file: fixed dims as ints, dynamic ones by name (read with ONNX Runtime, which
    the device has; the onnx package is host-only)."""
    return _describe_onnx(path)[0]


def _describe_onnx(path: str | Path) -> tuple[dict[str, list[int | str]], dict[str, str]]:
    try:
        backend = OrtBackend(path, threads=1, providers=["CPUExecutionProvider"])
    except ModelError as exc:
        raise EngineBuildError(str(exc)) from exc
    shapes = {i.name: [d if isinstance(d, int) else str(d) for d in i.shape] for i in backend.session.get_inputs()}
    return shapes, backend.metadata()


def runtime_input_size(frame_wh: tuple[int, int], scaling: Scaling = VIDEO_SCALING) -> tuple[int, int]:
    """The detector input (width, height) the runtime feeds for a frame size: scaled as the daemon scales video
    frames (edgeanon.defaults.VIDEO_SCALING), then padded to a multiple of 32."""
    w, h = frame_wh
    scale = scaling.scale_for(h, w)
    return (_round_up(max(1, round(w * scale)), MULTIPLE), _round_up(max(1, round(h * scale)), MULTIPLE))


@dataclass(frozen=True)
class EngineSettings:
    """Profile and builder settings, from the edgeanon config (camera size) and command-line options.

    `detector_opt` is the camera frame size; the profile's optimum is the input the daemon makes of it.
    """

    detector_min: tuple[int, int] = DEFAULT_DETECTOR_MIN
    detector_opt: tuple[int, int] = DEFAULT_CAMERA
    detector_max: tuple[int, int] = DEFAULT_DETECTOR_MAX
    generator_batch: tuple[int, int, int] = DEFAULT_GENERATOR_BATCH
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    # frames per detector call: one per camera of a [[cameras]] config (edgeanon.batching.batch_profile)
    detector_batch: tuple[int, int, int] = (1, 1, 1)

    def ranges(self, model: str) -> dict[str, tuple[int, int, int]]:
        if model == "detector":
            opt = runtime_input_size(self.detector_opt)
            largest = (max(opt[0], self.detector_max[0]), max(opt[1], self.detector_max[1]))
            smallest = (min(opt[0], self.detector_min[0]), min(opt[1], self.detector_min[1]))
            return detector_dim_ranges(smallest, opt, largest, self.detector_batch)
        if model == "plates":  # the plate detector's input is fixed (1 x 3 x 640 x 640): no dynamic dims
            return {}
        return {"batch": self.generator_batch}


def relative_onnx_name(onnx_path: Path, engine_path: Path) -> str:
    """The manifest records the ONNX file relative to the engine's folder."""
    return os.path.relpath(Path(onnx_path).resolve(), Path(engine_path).resolve().parent)


def timing_cache_path(engine_path: Path, tensorrt_version: str, device_name: str,
                      cache_dir: str | Path | None = None) -> Path:
    """The timing cache, beside the engine unless a cache folder is given (systemd's $CACHE_DIRECTORY)."""
    return Path(cache_dir or Path(engine_path).parent) / timing_cache_name(tensorrt_version, device_name)


def _layer_matches(layer_name: str, nodes: set[str]) -> bool:
    # TensorRT's ONNX parser names a layer after its node; a node that becomes several layers gets suffixes.
    return layer_name in nodes or any(layer_name.startswith(f"{n}_") or layer_name.startswith(f"{n} ")
                                      for n in nodes)


def apply_plan(trt, builder, network, config, plan: BuildPlan, profiles: dict[str, dict[str, list[int]]],
               workspace_mib: int, cache_bytes: bytes) -> list[str]:
    """Configure a builder config from the plan (works on TensorRT's objects or on fakes with the same API).

    Sets the workspace, builder flags, one optimization profile, the timing cache, and FP16 on the layers the
    QDQ model left in float. Returns the names of the layers set to FP16.
    """
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    profile = builder.create_optimization_profile()
    for name, shape in profiles.items():
        profile.set_shape(name, shape["min"], shape["opt"], shape["max"])
    config.add_optimization_profile(profile)
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    fp16 = []
    wanted = set(plan.fp16_layers)
    if wanted:
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if _layer_matches(layer.name, wanted):
                layer.precision = trt.float16
                fp16.append(layer.name)
    return fp16


class _Heartbeat:
    """While TensorRT builds (minutes on a Jetson), tell systemd we are alive and what we do."""

    def __init__(self, notifier, what: str, interval_s: float = BUILD_HEARTBEAT_S):
        self.notifier, self.what, self.interval_s = notifier, what, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            elapsed = time.monotonic() - self._start
            self.notifier.extend_timeout(int(3 * self.interval_s * 1e6))
            self.notifier.status(f"building {self.what} ({elapsed:.0f} s)")
            self._stop.wait(self.interval_s)

    def __enter__(self):
        if self.notifier is not None and self.notifier.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)


def import_tensorrt():
    """The tensorrt module, or EngineBuildError saying where engines are built. Imported on demand: TensorRT is
    JetPack's, absent from any other machine, and the runtime works without it (ONNX Runtime)."""
    try:
        import tensorrt
    except ImportError as exc:
        raise EngineBuildError("TensorRT is not installed here: build engines on the Jetson that runs them "
                               "(JetPack ships it; see requirements-jetson.txt)") from exc
    return tensorrt


def build_engine(onnx_path: str | Path, engine_path: str | Path, precision: str,
                 ranges: dict[str, tuple[int, int, int]], workspace_mib: int = DEFAULT_WORKSPACE_MIB,
                 timing_cache_dir: str | Path | None = None) -> EngineManifest:
    """Build and write one engine plus its manifest (needs TensorRT and a GPU). Returns the manifest."""
    trt = import_tensorrt()

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    input_shapes, onnx_metadata = _describe_onnx(onnx_path)
    plan = plan_build(trt.__version__, precision, kept_float_layers(onnx_metadata) if precision == "int8" else ())
    profiles = compute_profiles(input_shapes, ranges)
    env = current_environment()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"{onnx_path}: TensorRT cannot parse it ({errors[:300]})")
    config = builder.create_builder_config()
    cache_path = timing_cache_path(engine_path, trt.__version__, env.device_name, timing_cache_dir)
    fp16 = apply_plan(trt, builder, network, config, plan, profiles, workspace_mib,
                      cache_path.read_bytes() if cache_path.is_file() else b"")
    if plan.fp16_layers:
        log.info("FP16 fallback: %d layer(s) for the %d node(s) the QDQ model leaves in float",
                 len(fp16), len(plan.fp16_layers))
    what = f"{engine_path.name} ({precision}, TensorRT {trt.__version__})"
    log.info("building %s from %s; this takes minutes on a Jetson", what, onnx_path.name)
    start = time.monotonic()
    with _Heartbeat(Notifier(), what):
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"{onnx_path}: TensorRT failed to build {what} (see the TensorRT log above)")
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    with atomic_path(cache_path) as tmp:
        tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    manifest = EngineManifest(
        engine_sha256=sha256_file(engine_path), onnx_file=relative_onnx_name(onnx_path, engine_path),
        onnx_sha256=sha256_file(onnx_path), precision=precision, tensorrt_version=env.tensorrt_version,
        cuda_version=env.cuda_version, device_name=env.device_name, l4t_release=env.l4t_release,
        jetpack_version=env.jetpack_version, profiles=profiles,
        built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), workspace_mib=int(workspace_mib),
        onnx_metadata=onnx_metadata)
    write_manifest(engine_path, manifest)
    log.info("wrote %s in %.0f s (manifest %s.json)", engine_path, time.monotonic() - start, engine_path.name)
    return manifest
