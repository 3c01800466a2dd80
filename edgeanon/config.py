"""Daemon configuration: TOML in, validated frozen dataclasses out (every problem named by its dotted key)."""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeanon.defaults import (
    CAMERA_FAILURES,
    DEFAULT_BATCH_WAIT_MS,
    DEFAULT_CAMERA_FAILURE,
    DEFAULT_HOLD_S,
    DEFAULT_MASK_SCALE,
    DEFAULT_MASK_SHAPE,
    DEFAULT_NO_ACK_EXIT_S,
    DEFAULT_NO_ACK_WARN_S,
    DEFAULT_PLATE_METHOD,
    MASK_SHAPES,
    METHODS,
    PLATE_EVERY,
    PLATE_LOW_THRESHOLD,
    PLATE_MASK_SCALE,
    PLATE_METHODS,
    PLATE_THRESHOLD,
    VIDEO_PROFILE,
)
from edgeanon.scrub import MASK, safe_uri, scrub

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SOURCE_SCHEMES = ("csi", "v4l2", "rtsp", "rtsps", "gst", "file")
# Keys whose values are never echoed in an error message, whatever the mistake.
SECRET_KEYS = frozenset({"mqtt.password"})
# Keys holding a URI: shown without credentials even when the scheme is missing (admin:pw@cam/s).
URI_KEYS = frozenset({"source.uri"})
# Protocol limits: MQTT strings are at most 65535 bytes, the message-expiry interval is a 4-byte integer.
MQTT_STRING_MAX = 65535
UINT32_MAX = 2**32 - 1
PATH_MAX = 4096  # Linux
# The detector's score thresholds: one range for the config, the CLI and the detector itself (edgeanon.detector).
THRESHOLD_MIN, THRESHOLD_MAX = 0.01, 0.99
# What one camera's publish queue may hold at worst (queue_size x max_payload): a Jetson Nano has 4 GB in all.
QUEUE_BYTES_MAX = 256 * 1024 * 1024
# ONNX Runtime threads: more than this only wait on each other (100000 hangs the session's start).
THREADS_MAX = 256
# The largest picture decoded, an image file or one video frame (8192 x 8192, a camera's largest capture size too):
# read from the header and refused before a pixel is decoded.
MAX_PIXELS = 8192 * 8192
# Cameras one daemon may serve ([[cameras]]): each brings a source, a publisher and a thread.
MAX_CAMERAS = 16
# What a [[cameras]] table may set; the rest (model, telemetry) is the device's, shared by every camera.
CAMERA_KEYS = ("camera_id", "source", "pipeline", "encode", "mqtt")


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message names the key and gives a hint.

    `key` is the dotted key at fault when there is one (a command line maps it to its own option name).
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def _check(ok: bool, message: str) -> str | None:
    return None if ok else message


def _positive_max(hi: float):
    """Greater than 0 and at most `hi` (rules out inf and nan too)."""

    def check(v: float) -> str | None:
        return _check(0 < v <= hi, f"must be greater than 0 and at most {hi:g}")

    return check


def _text(max_len: int, allow_empty: bool = True):
    """A string of at most max_len UTF-8 bytes, without control characters (NUL breaks MQTT and C APIs)."""

    def check(v: str) -> str | None:
        if not allow_empty and not v:
            return "must not be empty"
        if len(v.encode("utf-8")) > max_len:
            return f"must be at most {max_len} bytes"
        return _check(v.isprintable(), "must not contain control characters")

    return check


def _one_of(*choices: str):
    def check(v: str) -> str | None:
        return _check(v in choices, f"must be one of {', '.join(repr(c) for c in choices)}")

    return check


def _between(lo: float, hi: float):
    def check(v: float) -> str | None:
        return _check(lo <= v <= hi, f"must be between {lo} and {hi}")

    return check


def _source_uri(v: str) -> str | None:
    scheme, sep, rest = v.partition("://")
    if not sep or scheme not in SOURCE_SCHEMES:
        return ("must be a URI like csi://0, v4l2:///dev/video0, rtsp://host/path, gst://PIPELINE or "
                f"file:///path.mp4 (scheme one of {', '.join(SOURCE_SCHEMES)})")
    if not rest:
        return "has nothing after '://'"
    return _text(8192)(v)


def _topic_part(v: str) -> str | None:
    bad = [c for c in "+#/" if c in v]
    return (_check(bool(v) and not bad, "must be non-empty and contain no '+', '#' or '/'")
            or _text(128)(v))


def _prefix(v: str) -> str | None:
    return (_check(bool(v) and "+" not in v and "#" not in v and not v.startswith("/") and not v.endswith("/"),
                   "must be non-empty, without '+' or '#', and not start or end with '/'")
            or _text(1024)(v))


def _f(default: Any, check=None, doc: str = ""):
    """A config field with a default, an optional value check, and a one-line description."""
    if isinstance(default, (list, dict)):
        raise TypeError("use immutable defaults")
    return field(default=default, metadata={"check": check, "doc": doc})


def _sub(cls):
    return field(default_factory=cls, metadata={"check": None, "doc": ""})


@dataclass(frozen=True)
class SourceConfig:
    uri: str = _f("csi://0", _source_uri, "camera or file to read")
    width: int = _f(1280, _between(16, 8192), "capture width for csi/v4l2")
    height: int = _f(720, _between(16, 8192), "capture height for csi/v4l2")
    fps: float = _f(30.0, _between(0.1, 240.0), "capture frame rate for csi/v4l2")
    realtime: bool = _f(False, None, "file://: pace at the file's frame rate instead of as fast as possible (as a "
                                     "camera: frames whose time passed while the daemon was busy are skipped)")
    loop: bool = _f(False, None, "file://: start again at the end instead of exiting")
    reconnect_min_s: float = _f(0.5, _between(0.01, 3600.0), "first wait before reopening a lost source")
    reconnect_max_s: float = _f(30.0, _between(0.01, 3600.0), "longest wait between reopen attempts")
    stall_timeout_s: float = _f(30.0, _between(0.1, 86400.0),
                                "exit (for a restart) when an open camera gives nothing this long")


@dataclass(frozen=True)
class ModelConfig:
    """The detect, track and anonymize chain (edgeanon.redactor.Redactor.from_config), for the daemon and the CLI.

    Unset (None) values take the detector profile's defaults: the video profile in the daemon, the still-image
    or video profile in `edgeanon anonymize` (edgeanon.defaults).
    """

    detector: str | None = _f(None, _text(PATH_MAX), "detector ONNX/engine path (default models/detector.onnx)")
    generator: str | None = _f(None, _text(PATH_MAX), "generator ONNX/engine path (default models/generator.onnx)")
    bank: str | None = _f(None, _text(PATH_MAX), "k-Same reference bank path (default models/ksame-bank.npz)")
    method: str | None = _f(None, _one_of(*METHODS),
                            "how faces are replaced; unset: gan when the default generator model is there, else "
                            "blur (edgeanon.models.resolve_method)")
    threshold: float | None = _f(None, _between(THRESHOLD_MIN, THRESHOLD_MAX),
                                 f"detector score threshold: faces at or above it get `method` (unset: "
                                 f"{VIDEO_PROFILE.threshold:g}, the profile's)")
    low_threshold: float | None = _f(None,
                                     lambda v: _check(v == 0 or THRESHOLD_MIN <= v <= THRESHOLD_MAX,
                                                      f"must be 0 (off) or {THRESHOLD_MIN} - {THRESHOLD_MAX}"),
                                     "doubtful candidates (low_threshold <= score < threshold) get a plain blur and "
                                     "keep a lost face's track alive; 0 = off (unset: "
                                     f"{VIDEO_PROFILE.low_threshold:g}, the profile's)")
    mask_scale: float = _f(DEFAULT_MASK_SCALE, _between(1.0, 3.0),
                           "grow each face box by this factor before redacting")
    mask_shape: str = _f(DEFAULT_MASK_SHAPE, _one_of(*MASK_SHAPES), "shape of the redacted region")
    input_scale: float = _f(0.0, lambda v: _check(v == 0 or 0.1 <= v <= 4.0, "must be 0 (automatic) or 0.1 - 4.0"),
                            "detector input scale, the speed/recall knob; 0 = automatic (full size up to 1280 px "
                            "on the long side, larger frames scaled to it), 0.5 = half size (4x less detector "
                            "work, misses small faces)")
    track: bool = _f(True, None, "keep faces covered for a moment when the detector misses them")
    hold_s: float = _f(DEFAULT_HOLD_S, _between(0.0, 60.0), "how long a face the detector lost stays covered")
    threads: int = _f(0, _between(0, THREADS_MAX), "ONNX Runtime threads (0 = all cores)")
    batch_wait_ms: float = _f(DEFAULT_BATCH_WAIT_MS, _between(0.0, 1000.0),
                              "with [[cameras]]: how long a shared model waits for other cameras' frames to join "
                              "one call (it runs as soon as every camera with a frame in progress waits on it)")


@dataclass(frozen=True)
class PlatesConfig:
    enabled: bool = _f(False, None, "cover licence plates too (off by default: the plate detector's weights are "
                                    "AGPL-3.0; python -m export plates makes models/plates.onnx)")
    model: str | None = _f(None, _text(PATH_MAX), "plate detector ONNX/engine path (default models/plates.onnx)")
    method: str = _f(DEFAULT_PLATE_METHOD, _one_of(*PLATE_METHODS), "how plates are replaced")
    threshold: float = _f(PLATE_THRESHOLD, _between(0.01, 0.99), "plate score threshold: plates at or above it get "
                                                                  "`method`")
    low_threshold: float = _f(PLATE_LOW_THRESHOLD,
                              lambda v: _check(v == 0 or 0.01 <= v <= 0.99, "must be 0 (off) or 0.01 - 0.99"),
                              "doubtful plates (low_threshold <= score < threshold) get a plain blur; 0 = off")
    mask_scale: float = _f(PLATE_MASK_SCALE, _between(1.0, 3.0), "grow each plate box by this factor before covering")
    every: int = _f(PLATE_EVERY, _between(1, 30), "run the plate detector on every Nth frame; the tracker holds the "
                                                  "plates in between")


@dataclass(frozen=True)
class PipelineConfig:
    deadline_ms: float = _f(1000.0, _positive_max(60_000.0), "a frame not redacted within this time is dropped")
    on_failure: str = _f("drop", _one_of("drop", "mask"), "what a failed or late frame becomes")
    stats_interval_s: float = _f(10.0, _between(0.1, 86400.0), "seconds between stats messages")
    target_fps: float = _f(10.0, _between(0.0, 240.0),
                           "with model.input_scale = 0: detect at full size unless that cannot keep this many "
                           "frames/s here (then half size); 0 = always full size")
    on_camera_failure: str = _f(DEFAULT_CAMERA_FAILURE, _one_of(*CAMERA_FAILURES),
                                "with [[cameras]]: a camera that stalls (source.stall_timeout_s) or whose MQTT "
                                "sender gives up is restarted alone (restart) or ends the daemon with code 1 "
                                "(exit); a one-camera config always exits (systemd restarts it)")


@dataclass(frozen=True)
class EncodeConfig:
    quality: int = _f(85, _between(1, 100), "JPEG quality to start from")
    min_quality: int = _f(40, _between(1, 100), "lowest JPEG quality before scaling down")
    min_scale: float = _f(0.25, _between(0.05, 1.0), "smallest scale factor before giving the frame up")


@dataclass(frozen=True)
class TlsConfig:
    ca: str | None = _f(None, _text(PATH_MAX), "CA certificate file (PEM); setting it turns TLS on")
    cert: str | None = _f(None, _text(PATH_MAX), "client certificate file (PEM)")
    key: str | None = _f(None, _text(PATH_MAX), "client private key file (PEM)")
    insecure: bool = _f(False, None, "skip the server host-name check (testing only)")


@dataclass(frozen=True)
class MqttConfig:
    host: str = _f("localhost", _text(253, allow_empty=False), "broker host name")
    port: int = _f(1883, _between(1, 65535), "broker port")
    protocol: str = _f("5", _one_of("5", "3.1.1"), "MQTT version; 3.1.1 loses the frame_index property and expiry")
    client_id: str = _f("", _text(256), "MQTT client id ('' = edgeanon-<camera_id>)")
    username: str | None = _f(None, _text(MQTT_STRING_MAX), "user name")
    password: str | None = _f(None, _text(MQTT_STRING_MAX), "password")
    keepalive_s: int = _f(30, _between(5, 3600), "MQTT keep-alive")
    prefix: str = _f("edgeanon", _prefix, "topic prefix")
    frame_expiry_s: int = _f(5, _between(1, UINT32_MAX), "message-expiry interval of frame messages")
    queue_size: int = _f(8, _between(1, 1000), "frames held while the broker is away (oldest dropped)")
    max_payload: int = _f(1_900_000, _between(10_000, 268_435_455), "largest frame payload in bytes")
    reconnect_min_s: int = _f(1, _between(1, 3600), "first wait before reconnecting")
    reconnect_max_s: int = _f(60, _between(1, 3600), "longest wait between reconnects")
    no_ack_warn_s: float = _f(DEFAULT_NO_ACK_WARN_S, _between(1.0, 3600.0),
                              "warn when frames wait and the broker acknowledged none for this long")
    no_ack_exit_s: float = _f(DEFAULT_NO_ACK_EXIT_S,
                              lambda v: _check(v == 0 or 1.0 <= v <= 86400.0, "must be 0 (never) or 1 - 86400"),
                              "exit non-zero (for a restart) when that lasts this long; 0 = never")
    homeassistant: bool = _f(False, None, "publish Home Assistant MQTT discovery")
    discovery_prefix: str = _f("homeassistant", _prefix, "Home Assistant discovery prefix")
    tls: TlsConfig = _sub(TlsConfig)


@dataclass(frozen=True)
class TelemetryConfig:
    enabled: bool = _f(True, None, "add device telemetry to stats")
    jtop: bool = _f(True, None, "use jetson-stats when installed and its service runs")


@dataclass(frozen=True)
class Config:
    camera_id: str = _f("cam0", _topic_part, "camera name used in topics")
    source: SourceConfig = _sub(SourceConfig)
    model: ModelConfig = _sub(ModelConfig)
    plates: PlatesConfig = _sub(PlatesConfig)
    pipeline: PipelineConfig = _sub(PipelineConfig)
    encode: EncodeConfig = _sub(EncodeConfig)
    mqtt: MqttConfig = _sub(MqttConfig)
    telemetry: TelemetryConfig = _sub(TelemetryConfig)
    # [[cameras]]: one full Config per camera (the top level with the camera's table over it); () = one camera,
    # this one. Read through cameras_of().
    cameras: tuple = field(default=(), metadata={"check": None, "doc": "", "cameras": True})


def cameras_of(cfg: Config) -> tuple[Config, ...]:
    """The cameras a config serves: its [[cameras]], or itself alone."""
    return cfg.cameras or (cfg,)


def _type_name(tp: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if args:
        return names.get(args[0], str(args[0]))
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - schema bug
        raise TypeError(f"unsupported config type {tp}")
    if not ok:
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {_shown(key, value)}", key)
    return value


def _shown(key: str, value: Any) -> str:
    """A value as an error message may show it: never a secret, never a URI's credentials, never long."""
    if key in SECRET_KEYS:
        return MASK
    text = repr(safe_uri(value)) if key in URI_KEYS and isinstance(value, str) else scrub(repr(value))
    return text if len(text) <= 200 else text[:200] + "..."


def _build(cls: type, data: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in data:
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else f"known keys: {', '.join(fields)}"
            raise ConfigError(f"{prefix}{name}: unknown key ({hint})", f"{prefix}{name}")
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}{name}"
        tp = hints[name]
        if f.metadata.get("cameras"):
            continue  # built by _camera_configs
        if dataclasses.is_dataclass(tp):
            sub = data.get(name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"{key}: expected a table [{key}], got {type(sub).__name__}", key)
            kwargs[name] = _build(tp, sub, f"{key}.")
            continue
        if name not in data:
            continue
        value = _coerce(data[name], tp, key)
        check = f.metadata.get("check")
        problem = check(value) if check and value is not None else None
        if problem:
            raise ConfigError(f"{key} = {_shown(key, value)}: {problem}", key)
        kwargs[name] = value
    return cls(**kwargs)


def _cross_checks(cfg: Config) -> None:
    m = cfg.model
    threshold = m.threshold if m.threshold is not None else VIDEO_PROFILE.threshold
    if m.low_threshold and m.low_threshold > threshold:
        raise ConfigError(f"model.low_threshold = {m.low_threshold:g}: must not be more than model.threshold "
                          f"({threshold:g})", "model.low_threshold")
    if cfg.source.reconnect_max_s < cfg.source.reconnect_min_s:
        raise ConfigError("source.reconnect_max_s: must not be less than source.reconnect_min_s")
    if cfg.mqtt.reconnect_max_s < cfg.mqtt.reconnect_min_s:
        raise ConfigError("mqtt.reconnect_max_s: must not be less than mqtt.reconnect_min_s")
    if cfg.mqtt.no_ack_exit_s and cfg.mqtt.no_ack_exit_s < cfg.mqtt.no_ack_warn_s:
        raise ConfigError("mqtt.no_ack_exit_s: must be 0 (never) or not less than mqtt.no_ack_warn_s")
    if cfg.plates.low_threshold > cfg.plates.threshold:
        raise ConfigError("plates.low_threshold: must not be more than plates.threshold")
    if cfg.encode.min_quality > cfg.encode.quality:
        raise ConfigError("encode.min_quality: must not be more than encode.quality")
    tls = cfg.mqtt.tls
    if (tls.cert is None) != (tls.key is None):
        raise ConfigError("mqtt.tls.cert: a client certificate needs mqtt.tls.key too (set both or neither)")
    if tls.cert is not None and tls.ca is None:
        raise ConfigError("mqtt.tls.ca: required when a client certificate is set")
    for key, path in (("mqtt.tls.ca", tls.ca), ("mqtt.tls.cert", tls.cert), ("mqtt.tls.key", tls.key)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{key} = {_shown(key, path)}: file not found")
    if cfg.mqtt.password is not None and cfg.mqtt.username is None:
        raise ConfigError("mqtt.password: set mqtt.username too")
    if cfg.mqtt.queue_size * cfg.mqtt.max_payload > QUEUE_BYTES_MAX:
        raise ConfigError(f"mqtt.queue_size: {cfg.mqtt.queue_size} frames of up to mqtt.max_payload = "
                          f"{cfg.mqtt.max_payload} bytes could hold more than {QUEUE_BYTES_MAX // 2**20} MiB; "
                          "lower one of them")


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: cannot override, '{part}' is not a table")
    node[last] = value


def config_from_dict(data: dict, overrides: dict[str, Any] | None = None) -> Config:
    """Validate a parsed TOML document (plus dotted-key overrides) into a Config.

    A `[[cameras]]` list makes one Config per camera (Config.cameras): each camera's table over the top level,
    the overrides over both.
    """
    data = _deep_copy(data)
    tables = data.pop("cameras", None)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    for dotted, value in overrides.items():
        _set_dotted(data, dotted, value)
    cfg = _build(Config, data, "")
    _cross_checks(cfg)
    if tables is None:
        return cfg
    return dataclasses.replace(cfg, cameras=_camera_configs(tables, data, overrides))


def _camera_configs(tables: Any, top: dict, overrides: dict[str, Any]) -> tuple[Config, ...]:
    """One Config per [[cameras]] table, checked like the top level; camera ids and client ids unique."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("cameras: expected a list of tables ([[cameras]])")
    if not 1 <= len(tables) <= MAX_CAMERAS:
        raise ConfigError(f"cameras: {len(tables)} cameras; one daemon serves 1 to {MAX_CAMERAS}")
    for dotted in ("camera_id", "source.uri"):
        if dotted in overrides:
            raise ConfigError(f"{dotted}: cannot be set on the command line for a config with [[cameras]] (set it in "
                              "each camera's table)")
    cameras: list[Config] = []
    for n, table in enumerate(tables):
        where = f"cameras[{n}]."
        for name in table:
            if name not in CAMERA_KEYS:
                shared = (" (shared by every camera: set it at the top level)"
                          if name in ("model", "telemetry", "plates") else "")
                raise ConfigError(f"{where}{name}: not a per-camera key{shared}; a camera may set "
                                  f"{', '.join(CAMERA_KEYS)}")
        if "camera_id" not in table:
            raise ConfigError(f"{where}camera_id: every camera needs its own id")
        merged = _merge(top, table)
        for dotted, value in overrides.items():
            _set_dotted(merged, dotted, value)
        try:
            camera = _build(Config, merged, "")
            _cross_checks(camera)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None
        cameras.append(camera)
    for what, value_of in (("camera_id", lambda c: c.camera_id),
                           ("mqtt.client_id", lambda c: c.mqtt.client_id or f"edgeanon-{c.camera_id}")):
        seen: dict[str, int] = {}
        for n, camera in enumerate(cameras):
            value = value_of(camera)
            if value in seen:
                raise ConfigError(f"cameras[{n}].{what} = {_shown(what, value)}: cameras[{seen[value]}] has it too; "
                                  "each camera needs its own")
            seen[value] = n
    return tuple(cameras)


def _merge(base: dict, over: dict) -> dict:
    """`over` laid over `base`, tables merged key by key."""
    out = _deep_copy(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def model_config(**values: Any) -> ModelConfig:
    """A ModelConfig from keyword values (None: the default), checked like the config file's [model] table."""
    return config_from_dict({}, {f"model.{k}": v for k, v in values.items()}).model


def _deep_copy(data: dict) -> dict:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read a TOML file (or only defaults when path is None), apply overrides, validate."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config ({exc})") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return config_from_dict(data, overrides)
    except ConfigError as exc:
        if path is not None:
            raise ConfigError(f"{path}: {exc}") from None
        raise


def describe(cls: type = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, description) for every key: the documentation of the config schema."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cameras"):
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            out += describe(hints[f.name], f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", f.default, f.metadata.get("doc", "")))
    return out
