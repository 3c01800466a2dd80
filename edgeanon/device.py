"""Several cameras in one daemon ([[cameras]]): shared models, one frame loop per camera, each failing alone.

The detector, the generator (and a plate detector) are loaded once and shared (edgeanon.batching): frames
of several cameras that are ready together go through one call. Each camera has its own source, MQTT
connection (its own client id, certificate and last will), tracker, deadline, counters and stats, and runs
the one-camera loop (edgeanon.pipeline.Pipeline) in a thread of its own. A camera whose loop ends in
failure (its source stalled, its MQTT sender gave up) is restarted alone after a backoff, or ends the
daemon with code 1 (`pipeline.on_camera_failure`); a file that ends stops its camera only. The daemon tells
systemd it is ready once every camera has redacted a first frame or is known to be away, and feeds the
watchdog only while every camera's loop turns with a healthy publisher, or the camera is being restarted.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

from edgeanon.batching import BatchGate, SharedModel, batch_limit
from edgeanon.config import Config
from edgeanon.frames import Frame, RedactedFrame
from edgeanon.pipeline import Pipeline
from edgeanon.publish.mqtt import FAILED
from edgeanon.scrub import short_error
from edgeanon.sources import Backoff, Source, SourceError
from edgeanon.systemd import Notifier

log = logging.getLogger(__name__)

TICK_S = 0.2
# A camera's loop turns at least every READ_TIMEOUT_S; one silent longer than this is stuck (in a model call).
TURN_STALE_S = 10.0
STATUS_EVERY_S = 10.0
START_EXTEND_USEC = 10_000_000
# A camera not connected this long after its start counts as known to be away (for READY).
AWAY_AFTER_S = 2.0


def model_slots(redactor: Any) -> list[tuple[str, Any, int]]:
    """(role, object holding `.backend`, rows one call may take beyond one camera) for every model of a chain."""
    slots = [("detector", redactor.detector, 0)]
    generator = getattr(redactor.anonymizer, "generator", None)
    if getattr(generator, "backend", None) is not None:  # ksame's reference bank is no model: nothing to share
        slots.append(("generator", generator, getattr(generator, "max_batch", 1)))
    plates = getattr(redactor, "plates", None)
    if plates is not None and getattr(plates, "detector", None) is not None:
        slots.append(("plates", plates.detector, 0))
    return slots


def share_models(redactor: Any, cameras: int, wait_s: float) -> tuple[BatchGate, list[SharedModel]]:
    """Put every model of `redactor` behind a SharedModel (in place): the detectors take up to one frame per
    camera a call, the generator up to its own batch size, where the backend joins calls (batch_limit); else
    one call per request in the shared session."""
    gate = BatchGate()
    shared = []
    for role, holder, rows in model_slots(redactor):
        limit = batch_limit(holder.backend, max(cameras, rows))
        model = SharedModel(holder.backend, gate, wait_s, limit, role)
        holder.backend = model
        shared.append(model)
        log.info("shared %s %s: %s", role, model.path.name,
                 f"requests joined in one call, up to {limit} rows" if limit > 1 else "one call per request")
    return gate, shared


def camera_chain(redactor: Any, shared: list[SharedModel]) -> Any:
    """A camera's own chain: its own tracker, scene-cut and plate state and input buffers, the shared models
    (and ksame's reference bank: read-only, one copy for all)."""
    keep = {id(m): m for m in shared}
    bank = getattr(getattr(redactor.anonymizer, "generator", None), "bank", None)
    if bank is not None:
        keep[id(bank)] = bank
    return copy.deepcopy(redactor, keep)


class CameraLogFilter(logging.Filter):
    """Prefixes what a camera's thread logs with its camera id (the one-camera loop's lines name none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = threading.current_thread().name
        if name.startswith("camera-") and not getattr(record, "camera_tagged", False):
            record.msg = f"camera {name[7:]}: {record.msg}"
            record.camera_tagged = True
        return True


def tag_camera_logs() -> None:
    """Every handler of the root logger tags camera threads' lines (CameraLogFilter)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, CameraLogFilter) for f in handler.filters):
            handler.addFilter(CameraLogFilter())


class GatedRedactor:
    """A camera's chain whose frames are announced to the shared models' gate while they are redacted."""

    def __init__(self, redactor: Any, gate: BatchGate):
        self.redactor = redactor
        self.gate = gate

    def process(self, frame: Frame) -> RedactedFrame:
        with self.gate.frame():
            return self.redactor.process(frame)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.redactor, name)


class SharedTelemetry:
    """One telemetry reader for every camera's stats: reads under a lock; only the device closes it."""

    def __init__(self, telemetry: Any):
        self.telemetry = telemetry
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        with self._lock:
            return self.telemetry.read()

    def close(self) -> None:
        """Left open: the device closes the reader when every camera has stopped."""


class Camera:
    """One camera of the device: opens its source and publisher, runs its loop in a thread, restarts it."""

    def __init__(self, cfg: Config, redactor: Any, open_source, open_publisher, telemetry: Any = None,
                 device_stats=None):
        self.cfg = cfg
        self.name = cfg.camera_id
        self.redactor = redactor
        self._open_source = open_source
        self._open_publisher = open_publisher
        self.telemetry = telemetry
        self.device_stats = device_stats
        self.pipeline: Pipeline | None = None
        self.thread: threading.Thread | None = None
        self.exit_code: int | None = None
        self.state = "new"  # running | restarting | ended | failed
        self.restarts = 0
        self.restart_at = 0.0
        self.started_at = 0.0
        self.backoff = Backoff(cfg.source.reconnect_min_s, cfg.source.reconnect_max_s)

    def start(self) -> None:
        """Open the camera's source and publisher and start its loop; a source that cannot be opened now (a file
        that is not video) fails the camera alone, as a failed loop does."""
        self.started_at = time.monotonic()
        self.thread = None
        publisher = self._open_publisher(self.cfg)
        publisher.start()
        try:
            source: Source = self._open_source(self.cfg.source)
        except Exception as exc:
            why = str(exc) if isinstance(exc, SourceError) else short_error(exc)  # a SourceError is one clean line
            log.error("camera %s: cannot open its source (%s)", self.name, why)
            self.report_failure(publisher, why)
            self.exit_code, self.state = 1, "running"
            return
        self.pipeline = Pipeline(self.cfg, source, self.redactor, publisher, Notifier(socket_path=""),
                                 self.telemetry)
        self.pipeline.device_stats = self.device_stats
        self.exit_code = None
        self.state = "running"
        self.thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self.thread.start()

    def report_failure(self, publisher: Any, why: str) -> None:
        """Say on the camera's own topics that it failed: a stats message with the reason, `failed` available."""
        if publisher.wait_connected(2.0):
            publisher.publish_stats({"camera": self.name, "time": round(time.time(), 3), "failed": why,
                                     "restarts": self.restarts})
        publisher.close(timeout=1.0, state=FAILED)

    def _run(self) -> None:
        assert self.pipeline is not None
        try:
            self.exit_code = self.pipeline.run()
        except Exception:  # a bug in one camera's loop ends that camera, not the device
            log.exception("camera %s: its loop failed", self.name)
            self.exit_code = 1

    @property
    def finished(self) -> bool:
        return self.exit_code is not None and (self.thread is None or not self.thread.is_alive())

    def request_stop(self) -> None:
        if self.pipeline is not None:
            self.pipeline.request_stop()

    def ready(self) -> bool:
        """Redacted a first frame, or known to be away (source not connected, restarting, ended)."""
        if self.state != "running" or self.pipeline is None:
            return True
        if self.pipeline.first_frame_at is not None:
            return True
        tried = time.monotonic() - self.started_at > AWAY_AFTER_S  # it had time to open its source
        return tried and not self.pipeline.source.stats().get("connected", False)

    def healthy(self, interval: float) -> bool:
        """Its loop turns and its publisher is healthy (over the watchdog's `interval`), or it is being restarted
        (or done)."""
        if self.state != "running" or self.pipeline is None or self.thread is None:
            return True
        if time.monotonic() - self.pipeline.last_turn > TURN_STALE_S:
            return False
        return self.pipeline.publisher_healthy(interval)


class Device:
    """Runs the cameras until stopped, all of them ended, or one failed with on_camera_failure = "exit"."""

    def __init__(self, cameras: list[Camera], notifier: Notifier | None = None, shared: list[SharedModel] = (),
                 telemetry: Any = None):
        self.cameras = cameras
        self.notifier = notifier or Notifier(socket_path="")
        self.shared = list(shared)
        self.telemetry = telemetry
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Stop every camera (safe from a signal handler)."""
        self._stop.set()
        for camera in self.cameras:
            camera.request_stop()

    def run(self) -> int:
        exit_code = 0
        ready = False
        last_status = 0.0
        self.notifier.status("waiting for the first frames")
        try:
            for camera in self.cameras:
                camera.start()
            while not self._stop.is_set():
                now = time.monotonic()
                for camera in self.cameras:
                    if camera.state == "running" and camera.finished:
                        if self._stop.is_set() or camera.exit_code == 0:
                            camera.state = "ended"
                            log.info("camera %s: ended", camera.name)
                        elif camera.cfg.pipeline.on_camera_failure == "exit":
                            camera.state = "failed"
                            log.error("camera %s failed: the daemon exits (pipeline.on_camera_failure = exit)",
                                      camera.name)
                            exit_code = 1
                        else:
                            delay = camera.backoff.next()
                            camera.state, camera.restart_at = "restarting", now + delay
                            log.error("camera %s failed; restarting it alone in %.1f s (the other cameras go on)",
                                      camera.name, delay)
                    elif camera.state == "restarting" and now >= camera.restart_at:
                        camera.restarts += 1
                        camera.start()
                        log.info("camera %s: restarted (%d so far)", camera.name, camera.restarts)
                if exit_code or all(c.state in ("ended", "failed") for c in self.cameras):
                    break
                self._feed_watchdog()
                if not ready:
                    if all(c.ready() for c in self.cameras):
                        ready = True
                        self.notifier.ready(status=self.status_line())
                        log.info("ready: every camera redacted a first frame or is known to be away")
                    else:
                        self.notifier.extend_timeout(START_EXTEND_USEC)
                if now - last_status >= STATUS_EVERY_S:
                    last_status = now
                    self.notifier.status(self.status_line())
                self._stop.wait(TICK_S)
        finally:
            self.shutdown()
        return exit_code

    def _feed_watchdog(self) -> None:
        """Ping systemd's watchdog only while every camera is healthy (Camera.healthy)."""
        interval = self.notifier.watchdog_interval
        if interval is not None and all(c.healthy(interval) for c in self.cameras):
            self.notifier.watchdog()

    def status_line(self) -> str:
        parts = []
        for c in self.cameras:
            p = c.pipeline
            parts.append(f"{c.name} {c.state}" + (f" {p.counters.frames_in} in" if p is not None else ""))
        return f"{len(self.cameras)} cameras: " + ", ".join(parts)

    def shutdown(self) -> None:
        """Stop every camera (each sends its final stats and `stopped`), then the shared models."""
        self.notifier.stopping()
        self.notifier.status("stopping")
        for camera in self.cameras:
            camera.request_stop()
        for camera in self.cameras:
            if camera.thread is not None:
                camera.thread.join(timeout=10.0)
        for model in self.shared:
            model.close()
        if self.telemetry is not None:
            self.telemetry.close()
