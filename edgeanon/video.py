"""Video files through PyAV (FFmpeg's libraries): frames in with their timestamps, H.264 out, audio copied.

The writer encodes into a temp name beside the target and renames it into place on close
(edgeanon.atomic); the audio of the source is copied packet for packet, never decoded.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from edgeanon.atomic import PendingFile
from edgeanon.config import MAX_PIXELS
from edgeanon.frames import Frame
from edgeanon.scrub import short_error

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts"}
# Output container per suffix, and the video codec written into it.
WRITE_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
WRITE_CODECS = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264", ".avi": "mjpeg"}
# x264 constant rate factor and speed preset: a plain re-encode of a 720p clip keeps >= 36 dB PSNR at well under
# the size of the former MPEG-4 Part 2 output (docs/video.md has the table and the command that measured it).
DEFAULT_CRF = 20
DEFAULT_PRESET = "veryfast"
# MJPEG (.avi) quantizer, 2 (best) .. 31: at 2 the loss is mostly 4:2:0 chroma, like H.264's.
MJPEG_QSCALE = 2
FALLBACK_FPS = 25.0


class VideoError(RuntimeError):
    """A video cannot be read or written; the message names the file and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int  # as the container declares it (0 when unknown)
    time_base: Fraction | None = None  # of the video stream's timestamps
    has_audio: bool = False


class VideoReader:
    """Decodes a video file frame by frame; `complete` says whether every declared frame was decoded.

    Frame timestamps are the stream's own presentation times in seconds, so a variable frame rate and
    the offset to the audio survive a round trip through VideoWriter. Frames stored rotated (a phone's
    display matrix) come out upright, as a player shows them.

    Limits, read from the stream's header before a frame is decoded: frames of more than MAX_PIXELS are refused
    (and FFmpeg's decoder refuses one mid-stream too), and so is a video declaring more than `max_total_pixels`
    (width x height x frames, None: no limit), which is counted again while decoding, for a header that says
    nothing or lies.
    """

    def __init__(self, path: str | Path, max_total_pixels: float | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise VideoError(f"{self.path}: empty file (0 bytes)")
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise VideoError(f"{self.path}: cannot be opened as a video (corrupt, truncated or unknown format: "
                             f"{short_error(exc)})") from exc
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{self.path}: cannot be opened as a video (it has no video stream)")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        width, height = self._stream.codec_context.width, self._stream.codec_context.height
        if width <= 0 or height <= 0:
            self._container.close()
            raise VideoError(f"{self.path}: video has no picture size (corrupt or not a video)")
        declared = int(self._stream.frames or 0)
        if width * height > MAX_PIXELS:
            self._container.close()
            raise VideoError(f"{self.path}: {width}x{height} frames are larger than {MAX_PIXELS} pixels; not decoded")
        self.max_total_pixels = max_total_pixels
        if max_total_pixels is not None and width * height * declared > max_total_pixels:
            self._container.close()
            raise VideoError(f"{self.path}: {declared} frames of {width}x{height} are more than "
                             f"{max_total_pixels / 1e9:g} billion pixels in all; not decoded")
        self._stream.codec_context.options = {"max_pixels": str(MAX_PIXELS)}  # a frame that grows mid-stream
        rate = self._stream.average_rate or self._stream.guessed_rate
        fps = float(rate) if rate else 0.0
        if not (math.isfinite(fps) and 0 < fps <= 1000):
            log.warning("%s: frame rate unknown, assuming %.0f fps", self.path, FALLBACK_FPS)
            fps = FALLBACK_FPS
        self.frames_read = 0
        self.error: str | None = None  # why decoding stopped early, when it did
        self._decoded = self._container.decode(self._stream)
        self._first = self._next_picture()  # decoded now: its display matrix says how the picture stands
        self._turns = round((self._first.rotation if self._first is not None else 0) / 90) % 4
        self._stored = (width, height)
        if self._turns % 2:
            width, height = height, width
        self.info = VideoInfo(width, height, fps, declared, self._stream.time_base,
                              bool(self._container.streams.audio))

    def _next_picture(self) -> av.VideoFrame | None:
        try:
            return next(self._decoded)
        except StopIteration:
            return None
        except av.FFmpegError as exc:  # a damaged packet: stop here; `complete` tells the caller
            self.error = short_error(exc)
            log.warning("%s: decoding stopped after %d frames (%s)", self.path, self.frames_read, self.error)
            return None

    def __iter__(self) -> Iterator[Frame]:
        picture, self._first = self._first, None
        if picture is None and self.frames_read > 0:
            picture = self._next_picture()
        while picture is not None:
            if (self.max_total_pixels is not None
                    and (self.frames_read + 1) * self._stored[0] * self._stored[1] > self.max_total_pixels):
                raise VideoError(f"{self.path}: more than {self.max_total_pixels / 1e9:g} billion pixels in all "
                                 f"(width x height x frames); stopped after {self.frames_read} frames")
            # a stream that changes size midway is scaled back to the size it started with
            image = picture.to_ndarray(width=self._stored[0], height=self._stored[1], format="bgr24")
            if self._turns:
                image = np.ascontiguousarray(np.rot90(image, self._turns))  # counter-clockwise, as stored
            timestamp = picture.time if picture.time is not None else self.frames_read / self.info.fps
            frame = Frame(self.frames_read, float(timestamp), image)
            self.frames_read += 1
            yield frame
            picture = self._next_picture()

    @property
    def complete(self) -> bool:
        """False when decoding stopped before the frame count the container declares (truncated/corrupt)."""
        if self.error is not None:
            return False
        return self.info.frame_count == 0 or self.frames_read >= self.info.frame_count

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoWriter:
    """Encodes frames into a temp file beside `path` and renames it to `path` on close.

    H.264 (x264, `crf`, `preset`) into .mp4/.m4v/.mov/.mkv, MJPEG into .avi. With `audio_from`, the first
    audio stream of that file is copied packet for packet, interleaved by time with the video; when the
    container cannot hold its codec, the video is written without it and a warning says so.
    Frames keep the timestamps given to `write` (seconds, in `time_base` ticks when given, as VideoReader
    reports them); without timestamps they follow `fps`.
    Closing after an error keeps what was written (all of it redacted) when there is anything;
    otherwise the partial file is removed.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], *, audio_from: str | Path | None = None,
                 time_base: Fraction | None = None, crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in WRITE_FORMATS:
            raise VideoError(f"{self.path}: cannot write {suffix or 'extensionless'} videos; "
                             f"use one of {', '.join(sorted(WRITE_FORMATS))}")
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise VideoError(f"{self.path}: output folder {parent} does not exist")
        if not os.access(parent, os.W_OK) or (self.path.exists() and not os.access(self.path, os.W_OK)):
            raise VideoError(f"{self.path}: not writable (permission denied)")
        if not (math.isfinite(fps) and fps > 0):
            raise VideoError(f"{self.path}: frame rate must be a positive number, got {fps}")
        self.size = (int(size[0]), int(size[1]))
        self.rate = Fraction(fps).limit_denominator(1001)  # 29.97... -> 30000/1001
        # AVI has no timestamps of its own (one frame per tick): it keeps the plain frame rate
        self.time_base = time_base if time_base is not None and suffix != ".avi" else 1 / self.rate
        self._pending = PendingFile(self.path)
        self.tmp = self._pending.tmp
        self.frames_written = 0
        self._last_pts: int | None = None
        self._audio_in = None
        self._closed = False
        try:
            self._container = av.open(str(self.tmp), "w", format=WRITE_FORMATS[suffix])
        except av.FFmpegError as exc:
            self._pending.discard()
            raise VideoError(f"{self.path}: cannot create the video ({short_error(exc)})") from exc
        try:
            self._video = self._add_video(WRITE_CODECS[suffix], crf, preset)
            self._audio = self._add_audio(audio_from) if audio_from is not None else None
        except (av.FFmpegError, ValueError) as exc:
            self._abort()
            raise VideoError(f"{self.path}: cannot open a video writer ({WRITE_CODECS[suffix]} at "
                             f"{self.size[0]}x{self.size[1]}: {short_error(exc)})") from exc

    def _add_video(self, codec: str, crf: int, preset: str):
        stream = self._container.add_stream(codec, rate=self.rate)
        stream.width, stream.height = self.size
        stream.codec_context.time_base = self.time_base
        if codec == "mjpeg":
            stream.pix_fmt = "yuvj420p"
            stream.codec_context.qmin = stream.codec_context.qmax = MJPEG_QSCALE
        else:
            # 4:2:0 needs even sides; an odd-sized video keeps its size in 4:4:4 (fewer players, no cropping)
            stream.pix_fmt = "yuv420p" if self.size[0] % 2 == 0 and self.size[1] % 2 == 0 else "yuv444p"
            stream.options = {"crf": str(int(crf)), "preset": preset}
        return stream

    def _add_audio(self, source: str | Path):
        """The output audio stream copied from `source`'s first audio stream, or None when there is none."""
        try:
            self._audio_in = av.open(str(source), metadata_errors="ignore")
        except av.FFmpegError as exc:
            log.warning("%s: cannot read its audio (%s); the video is written without it", source, short_error(exc))
            return None
        if not self._audio_in.streams.audio:
            self._audio_in.close()
            self._audio_in = None
            return None
        template = self._audio_in.streams.audio[0]
        try:
            stream = self._container.add_stream_from_template(template)
        except ValueError:  # the container cannot hold this codec
            log.warning("%s: its %s audio cannot go into a %s file; the video is written without sound (another "
                        "output type may keep it)", source, template.codec_context.name, self.path.suffix)
            self._audio_in.close()
            self._audio_in = None
            return None
        self._audio_packets = self._audio_in.demux(template)
        self._audio_next = None
        return stream

    def write(self, image: np.ndarray, timestamp: float | None = None) -> None:
        """Encode one BGR frame; `timestamp` in seconds (None: the next frame at the writer's fps)."""
        if image.shape[1] != self.size[0] or image.shape[0] != self.size[1]:
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, video is {self.size[0]}x{self.size[1]}")
        if timestamp is None:
            pts = round(self.frames_written / self.rate / self.time_base)
        else:
            pts = round(Fraction(timestamp) / self.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # encoders need strictly increasing timestamps
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts, frame.time_base = pts, self.time_base
        try:
            self._copy_audio(until=float(pts * self.time_base))
            self._container.mux(self._video.encode(frame))
        except av.FFmpegError as exc:
            raise VideoError(f"{self.path}: encoding failed ({short_error(exc)})") from exc
        self.frames_written += 1

    def _copy_audio(self, until: float | None) -> None:
        """Mux the source's audio packets up to time `until` (None: all that are left)."""
        if self._audio is None:
            return
        while True:
            packet = self._audio_next
            if packet is None:
                try:
                    packet = next(self._audio_packets)
                except StopIteration:
                    self._audio = None
                    return
                except av.FFmpegError as exc:
                    log.warning("%s: audio copy stopped (%s)", self.path, short_error(exc))
                    self._audio = None
                    return
                if packet.dts is None:  # the demuxer's empty flush packet
                    continue
            if until is not None and packet.pts is not None and float(packet.pts * packet.time_base) > until:
                self._audio_next = packet
                return
            self._audio_next = None
            packet.stream = self._audio
            self._container.mux(packet)

    def close(self) -> None:
        """Finish the file and move it into place (or drop it when no frame was written)."""
        if self._closed:
            return
        self._closed = True
        if self.frames_written == 0:
            self._abort()
            return
        try:
            self._container.mux(self._video.encode(None))  # flush the encoder's delayed frames
            self._copy_audio(until=None)
            self._container.close()
        except av.FFmpegError as exc:
            self._abort()
            raise VideoError(f"{self.path}: cannot finish the video ({short_error(exc)})") from exc
        finally:
            if self._audio_in is not None:
                self._audio_in.close()
        try:
            self._pending.commit()
        except OSError as exc:
            self._pending.discard()
            raise VideoError(f"{self.path}: cannot move the finished video into place ({exc.strerror})") from exc

    def _abort(self) -> None:
        for container in (self._container, self._audio_in):
            if container is not None:
                with contextlib.suppress(av.FFmpegError):
                    container.close()
        self._pending.discard()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
