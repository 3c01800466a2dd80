"""`edgeanon run`: the camera daemon — read a source, anonymize every face, publish only redacted frames."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from edgeanon.commands.user_errors import say
from edgeanon.config import Config, ConfigError, cameras_of, load_config
from edgeanon.coredump import core_settings, disable_core_dumps
from edgeanon.defaults import METHODS

log = logging.getLogger("edgeanon.run")

EPILOG = """\
examples:
  edgeanon run --config /etc/edgeanon/edgeanon.toml
  edgeanon run --source file:///data/clip.mp4 --method blur --mqtt-host localhost
  edgeanon run --source v4l2:///dev/video0 --camera-id door --mqtt-host broker.lan
  edgeanon run --config /etc/edgeanon/edgeanon.toml    # with [[cameras]]: every camera of the device

With [[cameras]] one process serves several cameras with one shared detector and generator (frames ready
together go through them in one call); each camera has its own topics, deadline and stats, and fails alone.

topics (prefix 'edgeanon' by default): <prefix>/<camera>/frame (JPEG), /events (JSON per frame),
/stats (periodic JSON), /available (online | stopped after a clean stop | failed | offline if it died).
Every key of the config file is documented in deploy/edgeanon.example.toml.
signals: SIGTERM, SIGINT and SIGHUP stop cleanly (final stats, 'stopped'); to load a changed config,
restart the daemon. It writes no core dump (RLIMIT_CORE 0, not dumpable): a core would hold raw frames.
exit codes: 0 stopped cleanly or file finished, 1 model or runtime failure (including a broker that
acknowledged nothing for mqtt.no_ack_exit_s), 2 bad configuration.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="run the camera daemon (anonymize and publish over MQTT)",
        description="Read frames from a camera or file, replace every face in place, and publish only "
                    "redacted frames over MQTT. Fails closed: a frame that could not be redacted in time "
                    "is dropped, never sent raw.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML config (without it: built-in defaults)")
    p.add_argument("--source", metavar="URI",
                   help="csi://0, v4l2:///dev/video0, rtsp://..., gst://PIPELINE or file:///clip.mp4")
    p.add_argument("--camera-id", metavar="ID", help="camera name used in topics")
    p.add_argument("--mqtt-host", metavar="H", help="broker host")
    p.add_argument("--mqtt-port", metavar="P", type=int, help="broker port")
    p.add_argument("--method", choices=METHODS,
                   help="how faces are replaced (default: gan when the generator model is there, else blur)")
    p.add_argument("--detector-model", metavar="PATH", help="detector model (.onnx or .engine)")
    p.add_argument("--generator-model", metavar="PATH", help="generator model (.onnx or .engine)")
    p.add_argument("--bank", metavar="PATH", help="k-Same reference bank of method ksame (.npz)")
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict:
    return {
        "source.uri": args.source, "camera_id": args.camera_id, "mqtt.host": args.mqtt_host,
        "mqtt.port": args.mqtt_port, "model.method": args.method, "model.detector": args.detector_model,
        "model.generator": args.generator_model, "model.bank": args.bank,
    }


# Signals that stop the daemon cleanly. SIGHUP too: it is not a reload (a changed config needs a restart),
# and its default action would kill the daemon without final stats or `stopped`.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def report_core_dumps(problems: list[str]) -> None:
    """Log what disable_core_dumps() achieved (after the config loaded: a config mistake stays one line)."""
    settings = core_settings()
    if problems:
        log.warning("core dumps: %s; a crash may leave raw frames in a core file (%s)", "; ".join(problems),
                    settings.describe())
    else:
        log.info("core dumps off: %s", settings.describe())


def run(args: argparse.Namespace) -> int:
    core_problems = disable_core_dumps()  # before the config (its password) or any frame is in memory
    try:
        cfg = load_config(args.config, _overrides(args))
    except ConfigError as exc:
        say("run", str(exc))
        return 2
    report_core_dumps(core_problems)
    return run_device(cfg) if cfg.cameras else run_daemon(cfg)


def run_device(cfg: Config) -> int:
    """Several cameras in one process (edgeanon.device): sources and publishers checked first (exit 2), the
    models loaded once (exit 1), the detection scale timed for the whole load, then every camera runs."""
    # imported here, not at the top: `edgeanon run --help` and config errors answer before ONNX Runtime
    # and paho load (and before them, core dumps are already off)
    from edgeanon.device import (
        Camera,
        Device,
        GatedRedactor,
        SharedTelemetry,
        camera_chain,
        share_models,
        tag_camera_logs,
    )
    from edgeanon.encode import JpegEncoder
    from edgeanon.inference.errors import ModelError
    from edgeanon.publish.mqtt import MqttPublisher, PublishError
    from edgeanon.redactor import Redactor
    from edgeanon.sources import SourceError, open_source, parse_uri, safe_uri
    from edgeanon.speedfit import fit_load
    from edgeanon.systemd import Notifier
    from edgeanon.telemetry import open_telemetry

    cameras_cfg = cameras_of(cfg)
    tag_camera_logs()
    device: list[Device] = []
    stop_requested = []

    def on_signal(signum, _frame) -> None:
        log.info("%s received: stopping every camera", signal.Signals(signum).name)
        stop_requested.append(signum)
        if device:
            device[0].request_stop()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)

    def open_publisher(c: Config) -> MqttPublisher:
        encoder = JpegEncoder(c.encode.quality, c.encode.min_quality, c.mqtt.max_payload, c.encode.min_scale)
        return MqttPublisher(c.mqtt, c.camera_id, encoder)

    try:  # every camera's URI and TLS files, before minutes of model loading
        for c in cameras_cfg:
            parse_uri(c.source.uri, c.source)
            open_publisher(c)
    except (PublishError, SourceError) as exc:
        say("run", str(exc))
        return 2
    notifier = Notifier()
    notifier.status("loading models")
    try:
        base = Redactor.from_config(cfg.model, video=True, plates=cfg.plates)
        gate, shared = share_models(base, len(cameras_cfg), cfg.model.batch_wait_ms / 1000.0)
        if not cfg.model.input_scale:  # timed as the shared detector will run: joined calls or single ones
            fit_load([base.detector] * len(cameras_cfg), [(c.source.height, c.source.width) for c in cameras_cfg],
                     [c.pipeline.target_fps for c in cameras_cfg], [c.camera_id for c in cameras_cfg],
                     max_batch=shared[0].max_batch)
    except (ModelError, ValueError) as exc:
        say("run", str(exc))
        return 1

    def device_stats() -> dict:
        return {"cameras": len(cameras_cfg), **{m.name: m.stats() for m in shared}}

    telemetry = SharedTelemetry(open_telemetry(cfg.telemetry.jtop)) if cfg.telemetry.enabled else None
    cameras = [Camera(c, GatedRedactor(camera_chain(base, shared), gate), open_source, open_publisher,
                      telemetry, device_stats) for c in cameras_cfg]
    device.append(Device(cameras, notifier, shared, telemetry.telemetry if telemetry else None))
    if stop_requested:
        device[0].request_stop()
    for c in cameras_cfg:
        log.info("camera %s: %s -> mqtt %s:%d (method %s, deadline %.0f ms, on failure %s)", c.camera_id,
                 safe_uri(c.source.uri), c.mqtt.host, c.mqtt.port, base.method, c.pipeline.deadline_ms,
                 c.pipeline.on_camera_failure)
    try:
        return device[0].run()
    except SourceError as exc:  # a source that cannot work here (csi:// without GStreamer), found as it opened
        say("run", str(exc))
        return 2


def run_daemon(cfg: Config) -> int:
    """Assemble source, publisher, models and loop; user-fixable problems end in one line, not a traceback."""
    # imported here, not at the top: `edgeanon run --help` and config errors answer before ONNX Runtime
    # and paho load (and before them, core dumps are already off)
    from edgeanon.encode import JpegEncoder
    from edgeanon.inference.errors import ModelError
    from edgeanon.pipeline import Pipeline
    from edgeanon.publish.mqtt import FAILED, MqttPublisher, PublishError
    from edgeanon.redactor import Redactor
    from edgeanon.sources import SourceError, open_source, safe_uri
    from edgeanon.speedfit import fit_to_speed
    from edgeanon.systemd import Notifier
    from edgeanon.telemetry import open_telemetry

    notifier = Notifier()
    stop_requested = []
    pipeline: Pipeline | None = None

    def on_signal(signum, _frame) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop_requested.append(signum)
        if pipeline is not None:
            pipeline.request_stop()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)

    encoder = JpegEncoder(cfg.encode.quality, cfg.encode.min_quality, cfg.mqtt.max_payload, cfg.encode.min_scale)
    try:
        publisher = MqttPublisher(cfg.mqtt, cfg.camera_id, encoder)
        source = open_source(cfg.source)
    except (PublishError, SourceError) as exc:
        say("run", str(exc))
        return 2
    publisher.start()
    notifier.status("loading models")
    m = cfg.model
    try:
        redactor = Redactor.from_config(m, video=True, plates=cfg.plates)
        if not m.input_scale:
            fit_to_speed(redactor.detector, cfg.source.height, cfg.source.width, cfg.pipeline.target_fps)
    except (ModelError, ValueError) as exc:
        say("run", str(exc))
        source.close()
        publisher.wait_connected(2.0)  # so that `failed` reaches the broker when it is there
        publisher.close(timeout=1.0, state=FAILED)  # not `stopped`: that is for a clean stop
        return 1
    telemetry = open_telemetry(cfg.telemetry.jtop) if cfg.telemetry.enabled else None
    pipeline = Pipeline(cfg, source, redactor, publisher, notifier, telemetry)
    if stop_requested:
        pipeline.request_stop()
    log.info("running: %s -> mqtt %s:%d as '%s' (method %s)", safe_uri(source.uri), cfg.mqtt.host,
             cfg.mqtt.port, cfg.camera_id, redactor.method)
    if redactor.plates is not None:
        log.info("plates: %s, method %s, every %d frame(s)", redactor.plates.detector.describe(),
                 cfg.plates.method, cfg.plates.every)
    return pipeline.run()
