"""Full-size detection where the machine keeps up, half size where it cannot: the daemon's automatic scale.

With `model.input_scale = 0` (automatic) the daemon detects at full size (up to 1280 px on the long side).
At start-up it times the detector on a frame of the camera's size; when full size would take more than
DETECT_SHARE of the frame interval that `pipeline.target_fps` asks for, it detects at half size instead
and says so. A fixed `model.input_scale` is never changed.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from edgeanon.detector import FaceDetector

log = logging.getLogger(__name__)

# Share of one frame's time the detector may take; the rest goes to the anonymizer, the encoder and the
# publisher (measured here: gan on two faces plus JPEG at 720p takes about as long as half-size detection).
DETECT_SHARE = 0.6
FALLBACK_SCALE = 0.5
RUNS = 3


def detection_ms(detector: FaceDetector, height: int, width: int, scale: float, runs: int = RUNS) -> float:
    """Median milliseconds of one detection at `scale` on a frame of this size (after one warm-up run)."""
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    times = []
    for i in range(runs + 1):
        prepared = detector.prepare(frame, scale)
        start = time.perf_counter()
        detector.infer(prepared)
        if i:
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def choose_scale(full_ms: float, target_fps: float) -> float | None:
    """None (keep full size) when full-size detection fits DETECT_SHARE of the frame interval, else FALLBACK_SCALE."""
    if target_fps <= 0:
        return None
    return None if full_ms <= DETECT_SHARE * 1000.0 / target_fps else FALLBACK_SCALE


def fit_to_speed(detector: FaceDetector, height: int, width: int, target_fps: float) -> float | None:
    """Time the automatic scale on this machine and fall back to half size when it is too slow; returns the
    scale now forced (None: unchanged)."""
    if detector.input_scale is not None or target_fps <= 0:
        return None
    full = detector.scales_for(height, width)[0]
    try:
        full_ms = detection_ms(detector, height, width, full)
    except Exception as exc:  # a detector failing on frames fails them closed in the loop; no reason to stop here
        log.warning("could not time the detector (%s): full size kept", type(exc).__name__)
        return None
    scale = choose_scale(full_ms, target_fps)
    if scale is not None and scale < full:
        detector.input_scale = scale
        log.warning("detector at %.2gx takes %.0f ms a frame here, more than %.0f%% of a frame at %g frames/s: "
                    "detecting at %.2gx (misses more small faces; set model.input_scale = 1.0 to force full size, "
                    "or pipeline.target_fps = 0)", full, full_ms, DETECT_SHARE * 100, target_fps, scale)
        return scale
    log.info("detector at %.2gx takes %.0f ms a frame here: full size kept", full, full_ms)
    return None
