"""JPEG encoding of redacted frames only, kept under a payload size by lowering quality, then scale."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeanon.frames import RedactedFrame


class PayloadTooLarge(ValueError):
    """Even at the lowest quality and scale the frame does not fit the payload limit."""


@dataclass(frozen=True)
class EncodedFrame:
    """JPEG bytes of one redacted frame, with what it took to fit."""

    index: int
    timestamp: float
    data: bytes
    quality: int
    width: int
    height: int


class JpegEncoder:
    """Encodes RedactedFrame to JPEG under max_bytes; refuses any other input type."""

    def __init__(self, quality: int = 85, min_quality: int = 40, max_bytes: int = 1_900_000,
                 min_scale: float = 0.25):
        if not 1 <= min_quality <= quality <= 100:
            raise ValueError("need 1 <= min_quality <= quality <= 100")
        self.quality = quality
        self.min_quality = min_quality
        self.max_bytes = max_bytes
        self.min_scale = min_scale
        self._last_quality = quality  # start where the previous frame ended up: frames are alike

    def encode(self, frame: RedactedFrame, max_bytes: int | None = None) -> EncodedFrame:
        """The frame as JPEG of at most `max_bytes` (default: the encoder's own limit); PayloadTooLarge when
        even the lowest quality and scale do not fit."""
        if not isinstance(frame, RedactedFrame):
            raise TypeError(f"JpegEncoder encodes only RedactedFrame, not {type(frame).__name__}")
        limit = self.max_bytes if max_bytes is None else min(self.max_bytes, max_bytes)
        image = frame.image
        scale = 1.0
        while True:
            quality = self._last_quality if scale == 1.0 else self.min_quality
            while True:
                data = _jpeg(image, quality)
                if len(data) <= limit:
                    if scale == 1.0:
                        # drift back up toward the configured quality when there is room
                        self._last_quality = min(self.quality, quality + 5) if len(data) < limit * 0.7 \
                            else quality
                    h, w = image.shape[:2]
                    return EncodedFrame(frame.index, frame.timestamp, data, quality, w, h)
                if quality <= self.min_quality:
                    break
                quality = max(self.min_quality, quality - 10)
                if scale == 1.0:
                    self._last_quality = quality
            scale *= 0.75
            if scale < self.min_scale:
                raise PayloadTooLarge(
                    f"frame {frame.index}: JPEG stays over {limit} bytes even at quality "
                    f"{self.min_quality} and scale {self.min_scale}")
            h, w = frame.image.shape[:2]
            image = cv2.resize(frame.image, (max(1, int(w * scale)), max(1, int(h * scale))),
                               interpolation=cv2.INTER_AREA)


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
