"""Video files with OpenCV: read frames with timestamps, write redacted frames to a temp name then rename."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeanon.frames import Frame

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts"}
# Output containers and the codec OpenCV's bundled FFmpeg can encode into each (no H.264 encoder ships with it).
WRITE_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
FALLBACK_FPS = 25.0


class VideoError(RuntimeError):
    """A video cannot be read or written; the message names the file and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int  # as the container declares it (0 when unknown)


class VideoReader:
    """Decodes a video file frame by frame; `complete` says whether every declared frame was decoded."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise VideoError(f"{self.path}: empty file (0 bytes)")
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            self._cap.release()
            raise VideoError(f"{self.path}: cannot be opened as a video (corrupt, truncated or unknown format)")
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS))
        count = int(max(0.0, self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        if width <= 0 or height <= 0:
            self._cap.release()
            raise VideoError(f"{self.path}: video has no picture size (corrupt or not a video)")
        if not (math.isfinite(fps) and 0 < fps <= 1000):
            log.warning("%s: frame rate unknown, assuming %.0f fps", self.path, FALLBACK_FPS)
            fps = FALLBACK_FPS
        self.info = VideoInfo(width, height, fps, count)
        self.frames_read = 0

    def __iter__(self) -> Iterator[Frame]:
        while True:
            ok, image = self._cap.read()
            if not ok or image is None:
                return
            frame = Frame(self.frames_read, self.frames_read / self.info.fps, image)
            self.frames_read += 1
            yield frame

    @property
    def complete(self) -> bool:
        """False when decoding stopped before the frame count the container declares (truncated/corrupt)."""
        return self.info.frame_count == 0 or self.frames_read >= self.info.frame_count

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoWriter:
    """Encodes frames into `<dir>/.<name>.partial<suffix>` and renames it to `path` on close.

    Closing after an error keeps what was written (all of it redacted) when there is anything;
    otherwise the partial file is removed.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in WRITE_FOURCC:
            raise VideoError(f"{self.path}: cannot write {suffix or 'extensionless'} videos; "
                             f"use one of {', '.join(sorted(WRITE_FOURCC))}")
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise VideoError(f"{self.path}: output folder {parent} does not exist")
        if not os.access(parent, os.W_OK) or (self.path.exists() and not os.access(self.path, os.W_OK)):
            raise VideoError(f"{self.path}: not writable (permission denied)")
        self.size = (int(size[0]), int(size[1]))
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        fourcc = cv2.VideoWriter_fourcc(*WRITE_FOURCC[suffix])
        self._writer = cv2.VideoWriter(str(self.tmp), cv2.CAP_FFMPEG, fourcc, float(fps), self.size)
        if not self._writer.isOpened():
            self._writer.release()
            self.tmp.unlink(missing_ok=True)
            raise VideoError(f"{self.path}: cannot open a video writer ({WRITE_FOURCC[suffix]} at {size[0]}x{size[1]})")
        self.frames_written = 0
        self._closed = False

    def write(self, image: np.ndarray) -> None:
        if image.shape[1] != self.size[0] or image.shape[0] != self.size[1]:
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, video is {self.size[0]}x{self.size[1]}")
        self._writer.write(image)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it into place (or drop it when no frame was written)."""
        if self._closed:
            return
        self._closed = True
        self._writer.release()
        if self.frames_written == 0:
            self.tmp.unlink(missing_ok=True)
            return
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            raise VideoError(f"{self.path}: cannot move the finished video into place ({exc.strerror})") from exc

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
