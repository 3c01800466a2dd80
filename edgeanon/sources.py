"""Frame sources by URI (csi, v4l2, rtsp, gst, file): newest frame for live ones, every frame for files.

Live sources run a grabber thread that keeps only the latest frame, and reopen a lost camera with
backoff instead of giving up. A file source reads in order in the caller's thread and ends (or loops).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import cv2

from edgeanon.config import MAX_PIXELS, SourceConfig
from edgeanon.frames import Frame
from edgeanon.scrub import UriError, safe_uri, split_uri

__all__ = ["Backoff", "FileSource", "LiveSource", "Source", "SourceEnded", "SourceError", "check_gst_pipeline",
           "gst_pipeline", "open_source", "parse_uri", "safe_uri"]

log = logging.getLogger(__name__)

APPSINK = "appsink drop=true max-buffers=1"


class SourceError(ValueError):
    """A source URI or setup that cannot work (a user-fixable problem)."""


class SourceEnded(Exception):
    """A non-looping file source has handed over its last frame."""


class Source(Protocol):
    uri: str

    def read(self, timeout: float = 1.0) -> Frame | None:
        """The next frame, or None when none came within timeout (camera away, reconnecting)."""
        ...

    def stalled_s(self) -> float:
        """Seconds an open source has given no frame (0 when it is not open or never stalls)."""
        ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class Backoff:
    """Doubling wait between reopen attempts, from min_s up to max_s; reset after a good frame."""

    def __init__(self, min_s: float, max_s: float):
        self.min_s, self.max_s = min_s, max_s
        self._next = min_s

    def next(self) -> float:
        delay = self._next
        self._next = min(self.max_s, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.min_s


def csi_pipeline(sensor_id: int, width: int, height: int, fps: float) -> str:
    """GStreamer pipeline for a Jetson CSI camera, ending in an appsink that keeps only the newest buffer."""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM),width={width},height={height},framerate={int(round(fps))}/1 ! "
        "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        f"{APPSINK}"
    )


# gst:// pipelines may hold only these elements (then the one appsink at the end): sources that read a
# camera, a file or a stream, demuxers, parsers, depayloaders, decoders and converters. Everything else,
# every sink, tee, muxer, encoder, payloader and network sender, is refused: a pipeline runs before
# edgeanon sees a frame, so an element that writes or sends would carry raw video off the device.
GST_ALLOWED = frozenset({
    # sources (rtspsrc receives only; udp/tcp sources are refused: they open listening ports)
    "nvarguscamerasrc", "v4l2src", "filesrc", "multifilesrc", "rtspsrc", "videotestsrc",
    # demuxers, parsers, depayloaders
    "qtdemux", "matroskademux", "avidemux", "tsdemux", "h264parse", "h265parse", "jpegparse",
    "rtph264depay", "rtph265depay", "rtpjpegdepay",
    # decoders
    "decodebin", "avdec_h264", "avdec_h265", "avdec_mjpeg", "jpegdec", "nvjpegdec", "nvv4l2decoder",
    "omxh264dec", "omxh265dec", "vp8dec", "vp9dec",
    # converters and plumbing
    "videoconvert", "nvvidconv", "nvvideoconvert", "videoscale", "videorate", "videoflip", "videocrop",
    "capsfilter", "queue",
})
# A caps filter between elements: media type/subtype, then optional fields (video/x-raw,format=BGR).
_CAPS = re.compile(r"^[a-z]+/[A-Za-z0-9.+-]+(\([A-Za-z:]+\))?(,.*)?$")


def _gst_chunks(pipeline: str) -> list[str]:
    """The `!`-separated parts of a gst-launch description, '!' inside quotes left alone."""
    chunks, current, quote = [], [], ""
    for ch in pipeline:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "!":
            chunks.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if quote:
        raise SourceError("gst:// pipeline: unbalanced quote")
    chunks.append("".join(current).strip())
    return chunks


def check_gst_pipeline(pipeline: str) -> None:
    """Refuse a pipeline (SourceError naming the element) unless it is one linear chain of allowed
    elements and caps ending in the one appsink."""
    chunks = _gst_chunks(pipeline)
    for position, chunk in enumerate(chunks):
        if not chunk:
            raise SourceError("gst:// pipeline: an empty element between two '!'")
        if _CAPS.match(chunk) and " " not in chunk.split(",", 1)[0]:
            continue
        try:
            words = shlex.split(chunk)
        except ValueError as exc:
            raise SourceError(f"gst:// pipeline: cannot parse '{safe_uri(chunk)}' ({exc})") from None
        element, props = words[0], words[1:]
        if element == "appsink":
            if position != len(chunks) - 1:
                raise SourceError("gst:// pipeline: 'appsink' must be the last element, and the only sink")
        elif element not in GST_ALLOWED:
            kind = ("a sink" if element.endswith("sink") else "a tee" if element == "tee"
                    else "not an allowed source, decoder or converter")
            raise SourceError(f"gst:// pipeline: element '{element}' is refused ({kind}; raw video must not "
                              "leave edgeanon before redaction)")
        for prop in props:
            # Only `name=value` properties: a bare word would start a branch (`t.`) or a second chain.
            if "=" not in prop or prop.startswith("="):
                raise SourceError(f"gst:// pipeline: '{safe_uri(prop)}' after '{element}' is refused (only "
                                  "property=value settings; branches and named pads are not allowed)")


def gst_pipeline(pipeline: str) -> str:
    """A checked user pipeline (check_gst_pipeline), completed with a BGR appsink when it has none."""
    pipeline = pipeline.strip().rstrip("!").strip()
    if not pipeline:
        raise SourceError("gst:// pipeline is empty")
    if _gst_chunks(pipeline)[-1].split(" ", 1)[0] != "appsink":
        pipeline = f"{pipeline} ! videoconvert ! video/x-raw,format=BGR ! {APPSINK}"
    check_gst_pipeline(pipeline)
    return pipeline


def _gstreamer_available() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if "GStreamer:" in line:
            return "YES" in line
    return False


def parse_uri(uri: str, cfg: SourceConfig | None = None) -> tuple[str, str]:
    """(kind, target): kind is one of csi, v4l2, rtsp, gst, file; target what OpenCV opens."""
    cfg = cfg or SourceConfig(uri=uri)
    scheme, sep, rest = uri.partition("://")
    if not sep or not rest:
        raise SourceError(f"source {safe_uri(uri)!r}: expected SCHEME://..., e.g. csi://0 or file:///clip.mp4")
    if scheme == "csi":
        if not rest.isdigit():
            raise SourceError(f"source {safe_uri(uri)!r}: csi:// takes a sensor number, e.g. csi://0")
        return "csi", csi_pipeline(int(rest), cfg.width, cfg.height, cfg.fps)
    if scheme == "v4l2":
        return "v4l2", f"/dev/video{rest}" if rest.isdigit() else rest
    if scheme in ("rtsp", "rtsps"):
        try:
            parts = split_uri(uri)  # the one parser: what doctor checks is what is opened
        except UriError as exc:
            raise SourceError(f"source {exc}") from None
        if not parts.host:
            raise SourceError(f"source {safe_uri(uri)!r}: no camera host, e.g. rtsp://user:password@cam/stream")
        return "rtsp", uri
    if scheme == "gst":
        return "gst", gst_pipeline(rest)
    if scheme == "file":
        return "file", file_path(uri)
    raise SourceError(f"source {safe_uri(uri)!r}: unknown scheme {scheme!r} (use csi, v4l2, rtsp, gst or file)")


def file_path(uri: str) -> str:
    """The path of a file:// URI; SourceError for one with a host (file://tmp/x.mp4 names host 'tmp')."""
    try:
        parts = split_uri(uri)
    except UriError as exc:
        raise SourceError(f"source {exc}") from None
    if parts.host not in ("", "localhost") or parts.user is not None:
        raise SourceError(f"source {safe_uri(uri)!r}: a file:// URI takes an absolute path after the two slashes, so "
                          f"this names the host {parts.host!r}; did you mean file:///{uri.partition('://')[2]}?")
    if not parts.rest.startswith("/"):
        raise SourceError(f"source {safe_uri(uri)!r}: give an absolute path, e.g. file:///data/clip.mp4")
    return parts.rest


def oversized(cap: Any) -> str | None:
    """'WxH' when an opened capture's header declares frames of more than MAX_PIXELS (read before any frame is
    decoded: a small file or a hostile stream may claim gigapixels), else None."""
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    return f"{width}x{height}" if width * height > MAX_PIXELS else None


def open_source(cfg: SourceConfig) -> Source:
    """Build the source for cfg.uri. Raises SourceError for a URI that can never work here (a file:// source
    that is missing or no video included: it fails at once rather than being retried)."""
    kind, target = parse_uri(cfg.uri, cfg)
    backoff = Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s)
    if kind == "file":
        path = Path(target)
        if not path.is_file():
            why = "is not a file" if path.exists() else "not found"
            raise SourceError(f"source {safe_uri(cfg.uri)!r}: {target} {why} (a file:// source must exist when the "
                              "daemon starts; for a camera use csi://, v4l2:// or rtsp://)")
        probe = cv2.VideoCapture(target, cv2.CAP_ANY)
        opened = probe.isOpened()
        too_large = oversized(probe) if opened else None
        probe.release()
        if not opened:
            raise SourceError(f"source {safe_uri(cfg.uri)!r}: {target} cannot be opened as video")
        if too_large:
            raise SourceError(f"source {safe_uri(cfg.uri)!r}: {target} has {too_large} frames, more than "
                              f"{MAX_PIXELS} pixels; not decoded")
        return FileSource(target, realtime=cfg.realtime, loop=cfg.loop, backoff=backoff, uri=cfg.uri)
    if kind in ("csi", "gst"):
        if not _gstreamer_available():
            raise SourceError(f"source {safe_uri(cfg.uri)!r}: this OpenCV was built without GStreamer "
                              "(on a Jetson use the system OpenCV: python3-opencv from JetPack)")
        return LiveSource(cfg.uri, lambda: cv2.VideoCapture(target, cv2.CAP_GSTREAMER), backoff)
    if kind == "v4l2":
        def open_v4l2():
            if not os.path.exists(target):
                return None
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            cap.set(cv2.CAP_PROP_FPS, cfg.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            return cap

        return LiveSource(cfg.uri, open_v4l2, backoff, missing_hint=f"{target} not present")

    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000]
    return LiveSource(cfg.uri, lambda: cv2.VideoCapture(target, cv2.CAP_FFMPEG, params), backoff)


class LiveSource:
    """A camera or stream read by a grabber thread that keeps only the newest frame; reopens with backoff."""

    def __init__(self, uri: str, opener: Callable[[], Any], backoff: Backoff, missing_hint: str = "cannot open"):
        self.uri = uri
        self._opener = opener
        self._backoff = backoff
        self._missing_hint = missing_hint
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._stop = threading.Event()
        self._index = 0
        self.skipped = 0
        self.reconnects = 0
        self.connected = False
        self._last_progress = time.monotonic()  # last open or frame: a capture silent since is stalled
        self._thread = threading.Thread(target=self._grab_loop, name="grabber", daemon=True)
        self._thread.start()

    def _grab_loop(self) -> None:
        name = safe_uri(self.uri)
        first = True
        while not self._stop.is_set():
            cap = None
            try:
                cap = self._opener()
            except Exception as exc:  # a broken driver must not kill the daemon
                log.warning("source %s: open failed (%s)", name, exc)
            if cap is None or not cap.isOpened():
                delay = self._backoff.next()
                log.warning("source %s: %s; retrying in %.1f s", name, self._missing_hint, delay)
                if cap is not None:
                    cap.release()
                self._stop.wait(delay)
                continue
            too_large = oversized(cap)
            if too_large:  # a camera that claims gigapixels is not decoded: no frame, as for a lost camera
                cap.release()
                delay = self._backoff.next()
                log.error("source %s: %s frames, more than %d pixels; not decoded, retrying in %.1f s", name,
                          too_large, MAX_PIXELS, delay)
                self._stop.wait(delay)
                continue
            if not first:
                self.reconnects += 1
            first = False
            log.info("source %s: opened", name)
            self._last_progress = time.monotonic()
            self.connected = True
            while not self._stop.is_set():
                ok, image = cap.read()
                if not ok or image is None:
                    break
                if image.shape[0] * image.shape[1] > MAX_PIXELS:  # grown mid-stream: dropped, never passed on
                    log.error("source %s: a %dx%d frame, more than %d pixels; dropped, reopening", name,
                              image.shape[1], image.shape[0], MAX_PIXELS)
                    break
                self._backoff.reset()
                self._last_progress = time.monotonic()
                with self._cond:
                    if self._latest is not None:
                        self.skipped += 1
                    self._latest = Frame(self._index, time.time(), image, clock=time.monotonic())
                    self._index += 1
                    self._cond.notify()
            self.connected = False
            cap.release()
            if not self._stop.is_set():
                delay = self._backoff.next()
                log.warning("source %s: lost; reopening in %.1f s", name, delay)
                self._stop.wait(delay)

    def read(self, timeout: float = 1.0) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self._stop.is_set(), timeout)
            frame, self._latest = self._latest, None
        return frame

    def stalled_s(self) -> float:
        """Seconds an open capture has given nothing (a driver hung inside read()); 0 when not open."""
        return time.monotonic() - self._last_progress if self.connected else 0.0

    def stats(self) -> dict[str, Any]:
        return {"connected": self.connected, "skipped": self.skipped, "reconnects": self.reconnects}

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=2.0)


class FileSource:
    """A video file read frame by frame in order; optional real-time pacing and looping.

    Timestamps are the position in the video (seconds, continuing across loops). A file that is
    missing or cannot be opened is retried with backoff rather than ending the daemon. Paced in real time, it
    behaves as a camera does: a frame whose time passed while the reader was busy is skipped (counted), so
    a slow reader gets the current frame, not an ever older one.
    """

    def __init__(self, path: str, realtime: bool = False, loop: bool = False, backoff: Backoff | None = None,
                 uri: str | None = None):
        self.uri = uri or f"file://{path}"
        self.path = Path(path)
        self.realtime = realtime
        self.loop = loop
        self._backoff = backoff or Backoff(0.5, 30.0)
        self._cap: Any = None
        self._next_try = 0.0
        self._index = 0
        self._offset_s = 0.0  # video time of the frames of earlier loops
        self._pos = 0  # frame number within the current pass
        self._fps = 25.0
        self._t0 = 0.0
        self.reconnects = 0
        self.loops = 0
        self.skipped = 0
        self._opened_once = False

    def _open(self) -> bool:
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_ANY) if self.path.is_file() else None
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            delay = self._backoff.next()
            why = "not found" if not self.path.exists() else "cannot be opened as video"
            log.warning("source %s: %s; retrying in %.1f s", safe_uri(self.uri), why, delay)
            self._next_try = time.monotonic() + delay
            return False
        too_large = oversized(cap)
        if too_large:  # replaced since open_source checked it: not decoded, retried like a broken file
            cap.release()
            delay = self._backoff.next()
            log.error("source %s: %s frames, more than %d pixels; not decoded, retrying in %.1f s",
                      safe_uri(self.uri), too_large, MAX_PIXELS, delay)
            self._next_try = time.monotonic() + delay
            return False
        fps = cap.get(cv2.CAP_PROP_FPS)
        self._fps = fps if fps and 1.0 <= fps <= 240.0 else 25.0
        self._cap = cap
        self._pos = 0
        self._t0 = time.monotonic()
        if self._opened_once:
            self.reconnects += 1
        self._opened_once = True
        return True

    def read(self, timeout: float = 1.0) -> Frame | None:
        if self._cap is None:
            wait = self._next_try - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, timeout))
                return None
            if not self._open():
                return None
        if self.realtime:
            self._skip_late()
        ok, image = self._cap.read()
        # OpenCV's FFmpeg backend scales a frame that grew mid-stream to the header's size (seen here); another backend
        # may not, so the limit is checked on every frame too.
        if ok and image is not None and image.shape[0] * image.shape[1] > MAX_PIXELS:
            log.error("source %s: a %dx%d frame, more than %d pixels; dropped, the file is retried later",
                      safe_uri(self.uri), image.shape[1], image.shape[0], MAX_PIXELS)
            image = None
            self._cap.release()
            self._cap = None
            self._next_try = time.monotonic() + self._backoff.next()
            return None
        if not ok or image is None:
            self._cap.release()
            self._cap = None
            if self._pos == 0:  # opened but gave nothing: treat like a broken file, retry later
                self._next_try = time.monotonic() + self._backoff.next()
                return None
            self._offset_s += self._pos / self._fps
            if not self.loop:
                raise SourceEnded(self.uri)
            self.loops += 1
            return self.read(timeout)
        self._backoff.reset()
        if self.realtime:
            due = self._t0 + self._pos / self._fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        frame = Frame(self._index, self._offset_s + self._pos / self._fps, image)
        self._index += 1
        self._pos += 1
        return frame

    def _skip_late(self) -> None:
        """Skip the frames whose time has passed (their index and position too), as a live camera's are."""
        late = int((time.monotonic() - self._t0) * self._fps) - self._pos
        while late > 0 and self._cap.grab():
            self._pos += 1
            self._index += 1
            self.skipped += 1
            late -= 1

    def stalled_s(self) -> float:
        return 0.0  # a file never hangs like a camera driver: it ends or fails to open

    def stats(self) -> dict[str, Any]:
        return {"connected": self._cap is not None, "loops": self.loops, "reconnects": self.reconnects,
                "skipped": self.skipped}

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
