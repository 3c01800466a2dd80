"""`python -m export engine`: build TensorRT engines on the device that will run them, with sidecar manifests.

One code path for TensorRT 8.5/8.6 (JetPack 5) and 10.x (JetPack 6/7). FP16 engines, INT8 engines from the
symmetric QDQ model (explicit quantization), and on TensorRT 8.x only a legacy entropy-calibrator path.
The pure decisions (build plan, profile shapes, file names) are separate functions, tested without TensorRT.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeanon.inference.manifest import EngineManifest, sha256_file, write_manifest
from export.atomic_io import atomic_path
from export.paths import MODELS_DIR, shared_data_dir

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8", "int8-calib")
# Which ONNX variant each precision builds from, per TensorRT generation.
_SOURCE = {
    8: {"fp32": ".onnx", "fp16": ".onnx", "int8": ".int8-trt.onnx", "int8-calib": ".onnx"},
    10: {"fp32": ".onnx", "fp16": ".fp16.onnx", "int8": ".int8-trt.onnx"},
}
DEFAULT_WORKSPACE_MIB = 1024
DEFAULT_DETECTOR_MIN = (320, 320)  # width, height
DEFAULT_DETECTOR_MAX = (1920, 1080)
DEFAULT_GENERATOR_BATCH = (1, 4, 16)
BUILD_HEARTBEAT_S = 20.0


class EngineBuildError(RuntimeError):
    """A user-fixable problem building an engine (wrong TensorRT, bad model, bad profile)."""


@dataclass(frozen=True)
class BuildPlan:
    """What to ask TensorRT for: network-creation flags, builder flags, source model, calibrator or not."""

    tensorrt_major: int
    network_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]
    source_suffix: str
    calibrator: bool


def parse_version(version: str) -> tuple[int, ...]:
    from edgeanon.inference.trt import parse_version as parse

    return parse(version)


def plan_build(tensorrt_version: str, precision: str) -> BuildPlan:
    """Version-gated build decisions.

    TensorRT 8.5/8.6: networks need EXPLICIT_BATCH; precision comes from builder flags (weak typing);
    the QDQ model needs INT8 (+FP16 for the layers left in float); the legacy calibrator is allowed.
    TensorRT 10+: EXPLICIT_BATCH is gone (always explicit); STRONGLY_TYPED networks take their precision
    from the ONNX types (FP16 from the fp16 ONNX, INT8 from Q/DQ), so no precision builder flags; implicit
    (calibrator) INT8 is deprecated there and refused.
    """
    version = parse_version(tensorrt_version)
    if precision not in PRECISIONS:
        raise EngineBuildError(f"precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    if version[:2] < (8, 5):
        raise EngineBuildError(f"TensorRT {tensorrt_version} is too old: edgeanon needs 8.5 or newer (JetPack 5.1+)")
    if version[0] < 10:
        builder = {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16"), "int8-calib": ("INT8", "FP16")}[precision]
        return BuildPlan(version[0], ("EXPLICIT_BATCH",), builder, _SOURCE[8][precision], precision == "int8-calib")
    if precision == "int8-calib":
        raise EngineBuildError(f"TensorRT {tensorrt_version}: calibrator INT8 is deprecated since 10.1; "
                               "use --precision int8 (explicit quantization from MODEL.int8-trt.onnx)")
    return BuildPlan(version[0], ("STRONGLY_TYPED",), (), _SOURCE[10][precision], False)


def source_onnx(models_dir: Path, model: str, plan: BuildPlan) -> Path:
    """detector + plan -> models/detector.onnx | detector.fp16.onnx | detector.int8-trt.onnx."""
    return Path(models_dir) / f"{model}{plan.source_suffix}"


def engine_name(model: str) -> str:
    """Engines are named after the model (`detector.engine`): the runtime finds it beside `detector.onnx`,
    and the manifest records the precision."""
    return f"{model}.engine"


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
    from edgeanon.detector import MULTIPLE

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
    from edgeanon.inference.errors import ModelError
    from edgeanon.inference.ort import OrtBackend

    try:
        backend = OrtBackend(path, threads=1, providers=["CPUExecutionProvider"])
    except ModelError as exc:
        raise EngineBuildError(str(exc)) from exc
    shapes = {i.name: [d if isinstance(d, int) else str(d) for d in i.shape] for i in backend.session.get_inputs()}
    return shapes, backend.metadata()


@dataclass(frozen=True)
class EngineSettings:
    """Profile and builder settings, from the edgeanon config (camera size) and command-line options."""

    detector_min: tuple[int, int] = DEFAULT_DETECTOR_MIN
    detector_opt: tuple[int, int] = (1280, 720)
    detector_max: tuple[int, int] = DEFAULT_DETECTOR_MAX
    generator_batch: tuple[int, int, int] = DEFAULT_GENERATOR_BATCH
    workspace_mib: int = DEFAULT_WORKSPACE_MIB

    def ranges(self, model: str) -> dict[str, tuple[int, int, int]]:
        if model == "detector":
            largest = (max(self.detector_opt[0], self.detector_max[0]), max(self.detector_opt[1], self.detector_max[1]))
            return detector_dim_ranges(self.detector_min, self.detector_opt, largest)
        return {"batch": self.generator_batch}


def settings_from_args(args: argparse.Namespace) -> EngineSettings:
    """The camera size of the edgeanon config is the detector's optimum shape; options override."""
    opt = (1280, 720)
    if args.config:
        from edgeanon.config import ConfigError, load_config

        try:
            cfg = load_config(args.config)
        except ConfigError as exc:
            raise EngineBuildError(f"{args.config}: {exc}") from exc
        opt = (cfg.source.width, cfg.source.height)
    if args.opt_size:
        opt = parse_size(args.opt_size)
    batch = tuple(int(v) for v in args.generator_batch.split(","))
    if len(batch) != 3 or not 1 <= batch[0] <= batch[1] <= batch[2]:
        raise EngineBuildError(f"--generator-batch {args.generator_batch!r}: expected MIN,OPT,MAX, e.g. 1,4,16")
    return EngineSettings(parse_size(args.min_size), opt, parse_size(args.max_size), batch, args.workspace_mib)


def relative_onnx_name(onnx_path: Path, engine_path: Path) -> str:
    """The manifest records the ONNX file relative to the engine's folder."""
    return os.path.relpath(Path(onnx_path).resolve(), Path(engine_path).resolve().parent)


def letterbox_blob(blob: np.ndarray, height: int, width: int) -> np.ndarray:
    """Place a (1, 3, h, w) blob top-left in a zero (1, 3, height, width) one (cropping what does not fit)."""
    out = np.zeros((1, 3, height, width), dtype=np.float32)
    h, w = min(blob.shape[2], height), min(blob.shape[3], width)
    out[:, :, :h, :w] = blob[:, :, :h, :w]
    return out


def detector_calibration_batches(onnx_path: Path, calib_dir: Path, height: int, width: int,
                                 limit: int) -> Iterator[np.ndarray]:
    """Detector inputs for the legacy calibrator at the calibration profile's shape, via the runtime's prepare()."""
    import cv2

    from edgeanon.detector import FaceDetector
    from edgeanon.images import list_images, load_image
    from edgeanon.inference.ort import OrtBackend

    if not Path(calib_dir).is_dir():
        raise EngineBuildError(f"{calib_dir}: calibration folder not found (pass --data DIR holding wider-calib/)")
    detector = FaceDetector(OrtBackend(onnx_path, threads=1))
    for path in list_images([calib_dir])[:limit]:
        image = load_image(path)
        scale = min(width / image.shape[1], height / image.shape[0], 1.0)
        if scale < 1.0:
            image = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA)
        yield letterbox_blob(detector.prepare(image).blob, height, width)


def _make_calibrator(trt, batches: Iterator[np.ndarray], cache_path: Path):
    """IInt8EntropyCalibrator2 over host batches (TensorRT 8.x legacy path only)."""
    from edgeanon.inference.trt import _check, _import_cudart

    cudart = _import_cudart()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()
            self.batches = batches
            self.ptr, self.nbytes = 0, 0
            self.count = 0

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            batch = next(self.batches, None)
            if batch is None:
                return None
            batch = np.ascontiguousarray(batch, dtype=np.float32)
            if batch.nbytes > self.nbytes:
                if self.ptr:
                    cudart.cudaFree(self.ptr)
                self.ptr, self.nbytes = int(_check(cudart.cudaMalloc(batch.nbytes))), batch.nbytes
            _check(cudart.cudaMemcpy(self.ptr, batch.ctypes.data, batch.nbytes,
                                     cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
            self.count += 1
            return [self.ptr]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            with atomic_path(cache_path) as tmp:
                tmp.write_bytes(bytes(cache))

    return EntropyCalibrator()


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


def build_engine(onnx_path: str | Path, engine_path: str | Path, precision: str,
                 ranges: dict[str, tuple[int, int, int]], workspace_mib: int = DEFAULT_WORKSPACE_MIB,
                 timing_cache_dir: str | Path | None = None,
                 calibration: Iterator[np.ndarray] | None = None) -> EngineManifest:
    """Build and write one engine plus its manifest (needs TensorRT and a GPU). Returns the manifest."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EngineBuildError("TensorRT is not installed here: build engines on the Jetson that runs them "
                               "(JetPack ships it; see requirements-jetson.txt)") from exc
    from edgeanon.inference.trt import current_environment
    from edgeanon.systemd import Notifier

    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    plan = plan_build(trt.__version__, precision)
    input_shapes, onnx_metadata = _describe_onnx(onnx_path)
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
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    profile = builder.create_optimization_profile()
    for name, shape in profiles.items():
        profile.set_shape(name, shape["min"], shape["opt"], shape["max"])
    config.add_optimization_profile(profile)
    cache_path = Path(timing_cache_dir or engine_path.parent) / timing_cache_name(trt.__version__, env.device_name)
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    if plan.calibrator:
        if calibration is None:
            raise EngineBuildError("int8-calib needs calibration images (--data DIR with wider-calib/)")
        config.int8_calibrator = _make_calibrator(trt, calibration, engine_path.with_suffix(".calib.cache"))
        config.set_calibration_profile(profile)
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


def run(args: argparse.Namespace) -> int:
    try:
        import tensorrt as trt
    except ImportError:
        log.error("TensorRT is not installed here: run `python -m export engine` on the Jetson that will use the "
                  "engines (JetPack ships TensorRT; pip install -r requirements-jetson.txt for cuda-python)")
        return 2
    try:
        settings = settings_from_args(args)
        models_dir = Path(args.models)
        out_dir = Path(args.out) if args.out else models_dir
        reports = []
        for model in args.model.split(","):
            plan = plan_build(trt.__version__, args.precision)
            onnx_path = Path(args.onnx) if args.onnx else source_onnx(models_dir, model, plan)
            if not onnx_path.is_file():
                raise EngineBuildError(f"{onnx_path}: not found (run `python -m export all --out {models_dir}` "
                                       "on the host, or copy the ONNX files here)")
            calibration = None
            if plan.calibrator:
                if model != "detector":
                    raise EngineBuildError("int8-calib is implemented for the detector only; use --precision int8")
                ranges = settings.ranges(model)
                calibration = detector_calibration_batches(onnx_path, shared_data_dir(args.data) / "wider-calib",
                                                           ranges["height"][1], ranges["width"][1], args.calib_images)
            manifest = build_engine(onnx_path, out_dir / engine_name(model), args.precision, settings.ranges(model),
                                    settings.workspace_mib, args.timing_cache_dir, calibration)
            reports.append({"model": model, "engine": str(out_dir / engine_name(model)), **manifest.to_dict()})
        print(json.dumps(reports, indent=2))
        return 0
    except EngineBuildError as exc:
        log.error("%s", exc)
        return 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "engine", help="build TensorRT engines on the Jetson (FP16, INT8 from QDQ), with manifests",
        description="Build TensorRT engines from the exported ONNX files ON THE DEVICE THAT RUNS THEM "
                    "(engines are tied to the TensorRT version, GPU and JetPack). Writes MODEL.engine and "
                    "MODEL.engine.json (ONNX sha256, TensorRT/CUDA/JetPack versions, GPU, precision, profile "
                    "shapes); the runtime refuses an engine whose manifest does not match. Precisions: fp16; "
                    "int8 (explicit quantization from MODEL.int8-trt.onnx); int8-calib (TensorRT 8.x only, "
                    "legacy entropy calibrator on wider-calib); fp32.",
        epilog="example (on the Jetson): python -m export engine --model detector,generator --precision fp16 "
               "--config /etc/edgeanon/edgeanon.toml")
    p.add_argument("--model", default="detector,generator", help="detector, generator or both (comma list)")
    p.add_argument("--precision", default="fp16", choices=PRECISIONS)
    p.add_argument("--models", "--onnx-dir", dest="models", default=str(MODELS_DIR),
                   help="folder with the ONNX files (default: %(default)s)")
    p.add_argument("--onnx", help="build from this ONNX file instead of the one the precision implies")
    p.add_argument("--out", help="engine folder (default: the models folder)")
    p.add_argument("--config", help="edgeanon TOML config: its camera size becomes the detector's optimum shape")
    p.add_argument("--opt-size", help="detector optimum frame size WxH (default: config camera size or 1280x720)")
    p.add_argument("--min-size", default="x".join(map(str, DEFAULT_DETECTOR_MIN)), help="smallest frame WxH")
    p.add_argument("--max-size", default="x".join(map(str, DEFAULT_DETECTOR_MAX)), help="largest frame WxH")
    p.add_argument("--generator-batch", default=",".join(map(str, DEFAULT_GENERATOR_BATCH)),
                   help="generator batch MIN,OPT,MAX (faces per frame; default: %(default)s)")
    p.add_argument("--workspace-mib", type=int, default=DEFAULT_WORKSPACE_MIB, help="builder workspace limit")
    p.add_argument("--timing-cache-dir", default=os.environ.get("CACHE_DIRECTORY"),
                   help="where the timing cache persists (default: $CACHE_DIRECTORY under systemd, else the "
                        "engine folder)")
    p.add_argument("--data", help="shared data folder for int8-calib (default: $EDGEANON_DATA or ../shared/data)")
    p.add_argument("--calib-images", type=int, default=64, help="int8-calib: calibration images")
    p.set_defaults(func=run)


__all__: Sequence[str] = ("BuildPlan", "plan_build", "compute_profiles", "detector_dim_ranges", "build_engine")
