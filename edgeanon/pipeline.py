"""The daemon's frame loop: source -> Redactor -> publisher, with a per-frame deadline, fail-closed, counters.

Any exception or missed deadline while detecting or anonymizing drops the frame (or, with
on_failure = "mask", publishes a fully masked frame instead): a raw face never reaches the publisher.
The loop itself pings the systemd watchdog, so a hung detector gets the service restarted; it pings
only while the publisher is healthy (frames leave, or the broker is known to be away), and a publisher
that gave up (send errors, or nothing acknowledged for mqtt.no_ack_exit_s) ends the loop with exit code
1, so systemd restarts the daemon. The final line and stats count what the broker acknowledged apart
from what was only handed over: nothing is called delivered that no broker acknowledged.

Raw pixels live no longer than one frame: the loop drops its reference after each frame, and when no
frame comes for a moment (camera away, end of stream) it wipes the redactor's buffers that still hold
the last one (the detector's input).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from edgeanon.config import Config
from edgeanon.frames import Frame, RedactedFrame
from edgeanon.publish.mqtt import FAILED, SEND_STALL_S, STOPPED
from edgeanon.scrub import short_error
from edgeanon.sources import FileSource, Source, SourceEnded, safe_uri
from edgeanon.systemd import Notifier

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.5
# While the first frame has not come (camera still away), keep extending systemd's start timeout by this.
START_EXTEND_USEC = 10_000_000


class FrameRedactor(Protocol):
    """What the loop needs of the redaction chain (edgeanon.redactor.Redactor)."""

    @property
    def method(self) -> str:
        """The method the chain serves faces with; a face whose record says otherwise got the fallback."""
        ...

    def process(self, frame: Frame) -> RedactedFrame:
        """Every face of `frame` handled, in place."""
        ...

    def mask_all(self, frame: Frame) -> RedactedFrame:
        """The whole frame covered (the fail-closed fallback)."""
        ...

    def forget_pixels(self) -> None:
        """Wipe every buffer that still holds the last frame's pixels."""
        ...


class Publisher(Protocol):
    """Where redacted frames, their events and the stats go (edgeanon.publish.mqtt.MqttPublisher)."""

    def wait_connected(self, timeout: float) -> bool: ...

    def publish_frame(self, frame: RedactedFrame, event: dict[str, Any], started: float | None = None) -> float | None:
        """Queue the frame with its event; the latency in ms since `started`, or None when it was dropped."""
        ...

    def publish_stats(self, stats: dict[str, Any]) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def stop_sending(self, timeout: float = 1.0) -> None:
        """Send what is queued for at most `timeout` s, then stop: the delivery counts are final."""
        ...

    def close(self, timeout: float = 3.0, state: str = STOPPED) -> None:
        """Publish `state` on the availability topic (`stopped` or `failed`) and disconnect."""
        ...


class Telemetry(Protocol):
    """Board readings for the stats message (edgeanon.telemetry)."""

    def read(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass
class Counters:
    """The frame loop's counts (what became of a frame before the publisher: mqtt.DeliveryCounters after)."""

    frames_in: int = 0
    redacted: int = 0  # redacted (or fully masked) and handed to the publisher, which queued it
    dropped_error: int = 0
    dropped_deadline: int = 0
    dropped_publish: int = 0
    masked: int = 0
    fallbacks: int = 0
    faces: int = 0
    plates: int = 0  # licence plates covered (with [plates] enabled), counted apart from faces


def final_line(c: Counters, mqtt: dict[str, Any]) -> str:
    """The daemon's last line: what came in, what the broker acknowledged, and where the rest went."""
    m = {k: mqtt.get(k, 0) for k in ("handed", "acked", "refused", "unacked", "dropped", "dropped_queue",
                                     "dropped_too_large", "dropped_unsent", "dropped_error", "dropped_at_stop")}
    # The publisher counts every frame it was offered (its too-large and not-sent drops are the loop's
    # dropped_publish), so the drops add up without counting a frame twice.
    return (f"{c.frames_in} in, {c.redacted} redacted; broker: {m['acked']} acknowledged, {m['refused']} refused, "
            f"{m['unacked']} unacknowledged of {m['handed']} handed to the MQTT client; "
            f"{c.dropped_error + c.dropped_deadline + m['dropped']} dropped (redaction error {c.dropped_error}, "
            f"deadline {c.dropped_deadline}, too large {m['dropped_too_large']}, queue {m['dropped_queue']}, "
            f"not sent {m['dropped_unsent']}, send error {m['dropped_error']}, at stop {m['dropped_at_stop']}); "
            f"{c.faces} faces" + (f", {c.plates} plates" if c.plates else ""))


def _percentiles(values: deque[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(np.fromiter(values, dtype=np.float64), [50, 90, 99])
    return {"p50": round(float(p50), 1), "p90": round(float(p90), 1), "p99": round(float(p99), 1)}


class Pipeline:
    """Runs frames from a source through the redactor to the publisher until stopped or the file ends."""

    def __init__(self, cfg: Config, source: Source, redactor: FrameRedactor, publisher: Publisher,
                 notifier: Notifier | None = None, telemetry: Telemetry | None = None):
        self.cfg = cfg
        self.source = source
        self.redactor = redactor
        self.publisher = publisher
        self.notifier = notifier or Notifier(socket_path="")
        self.telemetry = telemetry
        self.counters = Counters()
        self._latencies: deque[float] = deque(maxlen=1000)
        self._stop = threading.Event()
        self._deadline_s = cfg.pipeline.deadline_ms / 1000.0
        self._started = time.monotonic()
        self._last_stats = self._started
        self._last_stats_counts = (0, 0)
        self._error_logged_at = 0.0
        self._first_frame_at: float | None = None
        self._pixels_held = False  # the redactor's buffers hold a frame not wiped yet
        self.last_turn = self._started  # when the loop last turned (edgeanon.device: a loop stuck in a model call)
        self.device_stats: Any = None  # with [[cameras]]: a callable adding the shared models' numbers to stats

    def request_stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def first_frame_at(self) -> float | None:
        """When the first frame came (monotonic), None before."""
        return self._first_frame_at

    def run(self) -> int:
        """The frame loop; returns the exit code: 0 on a clean stop or at the end of a file, 1 for a hung camera."""
        if isinstance(self.source, FileSource):
            # A file is processed as fast as possible: let the broker connection come first.
            self.publisher.wait_connected(5.0)
        ready = False
        exit_code = 0
        self.notifier.status("waiting for the first frame")
        try:
            while not self._stop.is_set():
                self.last_turn = time.monotonic()
                check_progress = getattr(self.publisher, "check_progress", None)
                if check_progress is not None:
                    check_progress()
                failure = getattr(self.publisher, "failure", None)
                if failure:
                    log.error("publisher failed (%s); exiting so the service manager restarts the daemon", failure)
                    exit_code = 1
                    break
                self._feed_watchdog()
                try:
                    frame = self.source.read(timeout=READ_TIMEOUT_S)
                except SourceEnded:
                    log.info("end of %s", self.source.uri)
                    break
                if frame is None:
                    self._forget_pixels()
                    if not ready:
                        self.notifier.extend_timeout(START_EXTEND_USEC)
                    stalled = self.source.stalled_s()
                    if stalled > self.cfg.source.stall_timeout_s:
                        log.error("source %s: open but no frame for %.0f s (driver hung); exiting so the service "
                                  "manager restarts the daemon", safe_uri(self.source.uri), stalled)
                        exit_code = 1
                        break
                else:
                    self.handle(frame)
                    frame = None  # its raw pixels go no further than this frame
                    self._pixels_held = True
                    if not ready:
                        ready = True
                        self.notifier.ready(status="running")
                        log.info("ready: first frame processed")
                self._maybe_stats()
        except BaseException:
            exit_code = 1
            raise
        finally:
            self._forget_pixels()
            self.shutdown(clean=exit_code == 0)
        return exit_code

    def _forget_pixels(self) -> None:
        if self._pixels_held:
            self._pixels_held = False
            forget = getattr(self.redactor, "forget_pixels", None)
            if forget is not None:
                forget()

    def _feed_watchdog(self) -> None:
        """Ping systemd's watchdog, unless frames stopped leaving while the broker is there (then let it fire)."""
        interval = self.notifier.watchdog_interval
        if interval is not None and self.publisher_healthy(interval):
            self.notifier.watchdog()

    def publisher_healthy(self, interval: float) -> bool:
        """Frames leave, or the broker is known to be away, judged over the watchdog's `interval` (seconds)."""
        healthy = getattr(self.publisher, "healthy", None)
        return healthy is None or healthy(stall_s=min(SEND_STALL_S, max(1.0, interval)))

    def handle(self, frame: Frame) -> RedactedFrame | None:
        """Redact one frame and hand it to the publisher; None when it was dropped (fail closed)."""
        started = time.monotonic()
        if self._first_frame_at is None:
            self._first_frame_at = started
        c = self.counters
        c.frames_in += 1
        redacted = self.redact(frame, started)
        if redacted is None:
            return None
        c.faces += len(redacted.faces)
        c.plates += len(redacted.plates)
        c.fallbacks += sum(1 for f in redacted.faces if f.method != self.redactor.method)
        latency_ms = self.publisher.publish_frame(redacted, self.event_for(redacted), started=started)
        if latency_ms is None:
            c.dropped_publish += 1
            return None
        c.redacted += 1
        self._latencies.append(latency_ms)
        return redacted

    def redact(self, frame: Frame, started: float) -> RedactedFrame | None:
        """The redacted frame; after an error or past the deadline a fully masked one (on_failure = "mask"),
        or None: the frame is dropped and its raw pixels go nowhere."""
        c = self.counters
        try:
            redacted = self.redactor.process(frame)
            if not isinstance(redacted, RedactedFrame):
                raise TypeError(f"redactor returned {type(redacted).__name__}, not RedactedFrame")
        except Exception as exc:
            c.dropped_error += 1
            now = time.monotonic()
            if now - self._error_logged_at > 10.0:  # one line per 10 s, not one per frame
                self._error_logged_at = now
                log.error("frame %d: redaction failed (%s); dropped (%d so far)", frame.index, short_error(exc),
                          c.dropped_error)
        else:
            if time.monotonic() - started <= self._deadline_s:
                return redacted
            c.dropped_deadline += 1
            log.debug("frame %d: past the %.0f ms deadline; dropped", frame.index, self._deadline_s * 1000)
        if self.cfg.pipeline.on_failure != "mask":
            return None
        try:
            masked = self.redactor.mask_all(frame)
        except Exception as exc:
            log.error("frame %d: masking failed (%s); dropped", frame.index, short_error(exc))
            return None
        c.masked += 1
        return masked

    def event_for(self, redacted: RedactedFrame) -> dict[str, Any]:
        """The event published with a frame: what was found and what was done to it."""
        event = {
            "camera": self.cfg.camera_id,
            "frame_index": redacted.index,
            "timestamp": round(redacted.timestamp, 3),
            "faces": len(redacted.faces),
            "boxes": [[round(v, 1) for v in f.box] for f in redacted.faces],
            "methods": [f.method for f in redacted.faces],
            "track_ids": [f.track_id for f in redacted.faces],
            "fully_masked": redacted.fully_masked,
        }
        if self.cfg.plates.enabled:  # plates counted apart from faces
            event.update(plates=len(redacted.plates),
                         plate_boxes=[[round(v, 1) for v in p.box] for p in redacted.plates],
                         plate_methods=[p.method for p in redacted.plates])
        return event

    def stats(self) -> dict[str, Any]:
        """The stats message: rates over the last interval, latency percentiles, counters, telemetry."""
        now = time.monotonic()
        c = self.counters
        dt = max(1e-6, now - self._last_stats)
        fps = (c.redacted - self._last_stats_counts[0]) / dt
        fps_in = (c.frames_in - self._last_stats_counts[1]) / dt
        self._last_stats, self._last_stats_counts = now, (c.redacted, c.frames_in)
        out: dict[str, Any] = {
            "camera": self.cfg.camera_id,
            "time": round(time.time(), 3),
            "uptime_s": round(now - self._started, 1),
            "fps": round(fps, 2),
            "fps_in": round(fps_in, 2),
            # since the first frame: the number to compare runs with (fps is over the last interval only)
            "fps_avg": round(c.redacted / max(1e-6, now - self._first_frame_at), 2) if self._first_frame_at else 0.0,
            "latency_ms": _percentiles(self._latencies),
            **asdict(c),
            "drops": c.dropped_error + c.dropped_deadline + c.dropped_publish,  # before the publisher's queue
            "method": self.redactor.method,
            "source": self.source.stats(),
        }
        out["mqtt"] = self.publisher.stats()
        if self.device_stats is not None:
            out["device"] = self.device_stats()
        if self.telemetry is not None:
            try:
                out["telemetry"] = self.telemetry.read()
            except Exception as exc:  # telemetry is nice to have, never a reason to stop
                log.debug("telemetry failed: %s", exc)
        return out

    def _maybe_stats(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_stats < self.cfg.pipeline.stats_interval_s:
            return
        stats = self.stats()
        self.publisher.publish_stats(stats)
        self.notifier.status(self._status_line(stats))

    def _status_line(self, stats: dict) -> str:
        lat = stats["latency_ms"]["p50"]
        return (f"{stats['fps']:.1f} fps, p50 {lat if lat is not None else '-'} ms, {self.counters.faces} faces, "
                f"{stats['drops']} dropped")

    def shutdown(self, clean: bool = True) -> None:
        """Send what is queued (1 s at most), final stats, `stopped` (or `failed`), disconnect: well within
        systemd's stop timeout."""
        self.notifier.stopping()
        self.notifier.status("stopping")
        word = "stopped" if clean else "failed"
        try:
            self.publisher.stop_sending(timeout=1.0)
            final = self.stats()
            final["final"] = True
            self.publisher.publish_stats(final)
            self.notifier.status(f"{word}: {self._status_line(final)}")
            log.log(logging.INFO if clean else logging.ERROR, "%s: %s", word, final_line(self.counters, final["mqtt"]))
            if self.counters.redacted and not final["mqtt"].get("acked"):
                log.warning("no broker acknowledged any of the %d redacted frames", self.counters.redacted)
        finally:
            self.publisher.close(timeout=2.5, state=STOPPED if clean else FAILED)
            self.source.close()
            if self.telemetry is not None:
                self.telemetry.close()
