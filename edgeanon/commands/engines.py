"""`edgeanon engines`: build this device's TensorRT engines from the ONNX models, each with its manifest."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from edgeanon.batching import batch_profile
from edgeanon.config import MAX_CAMERAS, ConfigError, cameras_of, load_config
from edgeanon.engines import (
    DEFAULT_CAMERA,
    DEFAULT_DETECTOR_MAX,
    DEFAULT_DETECTOR_MIN,
    DEFAULT_GENERATOR_BATCH,
    DEFAULT_PRECISION,
    DEFAULT_WORKSPACE_MIB,
    PRECISIONS,
    EngineBuildError,
    EngineSettings,
    build_engine,
    choose_precision,
    import_tensorrt,
    parse_size,
    plan_build,
    source_onnx,
)
from edgeanon.inference.manifest import engine_name
from edgeanon.models import MODELS_DIR

log = logging.getLogger(__name__)

MODELS = ("detector", "generator", "plates")  # plates: the licence-plate detector, when made
DEFAULT_MODELS = "detector,generator"


def settings_from_args(args: argparse.Namespace) -> EngineSettings:
    """The edgeanon config's camera size sets the detector's optimum shape, its number of cameras the detector's
    batch (one frame per camera a call); options override."""
    camera = DEFAULT_CAMERA
    cameras = 1
    if args.config:
        try:
            cfg = load_config(args.config)
        except ConfigError as exc:
            raise EngineBuildError(f"{args.config}: {exc}") from exc
        cameras = len(cameras_of(cfg))
        camera = max(((c.source.width, c.source.height) for c in cameras_of(cfg)), key=lambda wh: wh[0] * wh[1])
    if args.cameras is not None:
        if not 1 <= args.cameras <= MAX_CAMERAS:
            raise EngineBuildError(f"--cameras {args.cameras}: must be 1 to {MAX_CAMERAS}")
        cameras = args.cameras
    if args.opt_size:
        camera = parse_size(args.opt_size)
    batch = DEFAULT_GENERATOR_BATCH
    if args.generator_batch:
        try:
            batch = tuple(int(v) for v in args.generator_batch.split(","))
        except ValueError:
            batch = ()
        if len(batch) != 3 or not 1 <= batch[0] <= batch[1] <= batch[2]:
            raise EngineBuildError(f"--generator-batch {args.generator_batch!r}: expected MIN,OPT,MAX, e.g. 1,4,32")
    return EngineSettings(parse_size(args.min_size), camera, parse_size(args.max_size), batch, args.workspace_mib,
                          batch_profile(cameras))


def models_of(text: str) -> list[str]:
    """'detector,generator' -> the models to build; EngineBuildError naming an unknown one."""
    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise EngineBuildError(f"--model {text!r}: choose from {', '.join(MODELS)} (comma list)")
    return models


def run(args: argparse.Namespace) -> int:
    try:
        models = models_of(args.model)
        settings = settings_from_args(args)
        trt = import_tensorrt()
        models_dir = Path(args.models)
        out_dir = Path(args.out) if args.out else models_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        reports = []
        for model in models:
            precision = choose_precision(args.precision, models_dir, model, trt.__version__)
            plan = plan_build(trt.__version__, precision)
            onnx_path = Path(args.onnx) if args.onnx else source_onnx(models_dir, model, plan)
            if not onnx_path.is_file():
                raise EngineBuildError(f"{onnx_path}: not found (run `python -m export all --out {models_dir}` "
                                       "on the host, or copy the ONNX files here)")
            engine = out_dir / engine_name(model)
            manifest = build_engine(onnx_path, engine, precision, settings.ranges(model),
                                    settings.workspace_mib, args.timing_cache_dir)
            reports.append({"model": model, "engine": str(engine), **manifest.to_dict()})
        print(json.dumps(reports, indent=2))
        return 0
    except EngineBuildError as exc:
        log.error("%s", exc)
        return 2


def register(sub: argparse._SubParsersAction, name: str = "engines") -> None:
    p = sub.add_parser(
        name, help="build TensorRT engines on this device (INT8 from QDQ, FP16), with manifests",
        description="Build TensorRT engines from the exported ONNX files ON THE DEVICE THAT RUNS THEM "
                    "(engines are tied to the TensorRT version, GPU and JetPack). Writes MODEL.engine and "
                    "MODEL.engine.json (ONNX sha256, TensorRT/CUDA/JetPack versions, GPU, precision, profile "
                    "shapes); the runtime refuses an engine whose manifest does not match. Precisions: int8 "
                    "(default; explicit quantization from MODEL.int8-trt.onnx, no calibrator, the layers it "
                    "leaves in float built in FP16); fp16; fp32. The detector profile's optimum is the input "
                    "the daemon makes of the camera frame; the generator's batch range covers the runtime's "
                    "largest batch. The timing cache is kept beside the engine. Needs TensorRT (JetPack's), "
                    "no torch.",
        epilog="example (on the Jetson): edgeanon engines --model detector,generator "
               "--config /etc/edgeanon/edgeanon.toml")
    p.add_argument("--model", default=DEFAULT_MODELS,
                   help="detector, generator, plates (the licence-plate detector, when made), comma list "
                        "(default: %(default)s)")
    p.add_argument("--precision", default=DEFAULT_PRECISION, choices=(*PRECISIONS, "auto"),
                   help="default: %(default)s; auto = int8 where MODEL.int8-trt.onnx is present, else fp16")
    p.add_argument("--models", "--onnx-dir", dest="models", default=str(MODELS_DIR),
                   help="folder with the ONNX files (default: %(default)s, or $EDGEANON_MODELS)")
    p.add_argument("--onnx", help="build from this ONNX file instead of the one the precision implies")
    p.add_argument("--out", help="engine folder, created if missing (default: the models folder)")
    p.add_argument("--config", help="edgeanon TOML config: its camera size sets the detector's optimum shape")
    p.add_argument("--cameras", type=int, default=None, metavar="N",
                   help="cameras one daemon serves: the detector engine takes up to N frames a call (default: the "
                        "config's [[cameras]], else 1)")
    p.add_argument("--opt-size", help="camera frame size WxH the detector is tuned for (default: config camera "
                                      "size or 1280x720; the daemon halves large frames before detection)")
    p.add_argument("--min-size", default="x".join(map(str, DEFAULT_DETECTOR_MIN)), help="smallest detector input WxH")
    p.add_argument("--max-size", default="x".join(map(str, DEFAULT_DETECTOR_MAX)), help="largest detector input WxH")
    p.add_argument("--generator-batch", default=None,
                   help="generator batch MIN,OPT,MAX (faces per call; default: 1,4,the runtime's largest batch)")
    p.add_argument("--workspace-mib", type=int, default=DEFAULT_WORKSPACE_MIB, help="builder workspace limit")
    p.add_argument("--timing-cache-dir", default=os.environ.get("CACHE_DIRECTORY"),
                   help="where the timing cache persists (default: $CACHE_DIRECTORY under systemd, else beside "
                        "the engine)")
    p.set_defaults(func=run)
