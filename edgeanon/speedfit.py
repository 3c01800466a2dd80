"""Full-size detection where the machine keeps up, half size where it cannot: the daemon's automatic scale.

With `model.input_scale = 0` (automatic) the daemon detects at full size (up to 1280 px on the long side).
At start-up it times the detector on a frame of the camera's size; when full size would take more than
DETECT_SHARE of the frame interval that `pipeline.target_fps` asks for, it detects at half size instead
and says so. A fixed `model.input_scale` is never changed.

With several cameras (`fit_load`) the budget is the whole load: one frame of every camera goes through the
detector as the daemon sends them (one call when their sizes agree), and full size stays only while that,
at every camera's `pipeline.target_fps`, fits DETECT_SHARE of each second. The choice is logged per camera.
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


def load_ms(detector: FaceDetector, sizes: list[tuple[int, int]], scale_of, max_batch: int = 1,
            runs: int = RUNS) -> list[float]:
    """Milliseconds of detection each frame costs when one frame of every size in `sizes` (height, width)
    goes through the detector together: frames of equal size in one call (up to `max_batch`), the call's time
    split evenly among them. `scale_of(h, w)` is the input scale each is detected at."""
    rng = np.random.default_rng(0)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, size in enumerate(sizes):
        groups.setdefault(size, []).append(i)
    out = [0.0] * len(sizes)
    for (h, w), members in groups.items():
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        blob = detector.prepare(frame, scale_of(h, w)).blob
        batch = np.concatenate([blob] * max(1, min(len(members), max_batch)))
        times = []
        for i in range(runs + 1):
            start = time.perf_counter()
            detector.backend.run({detector.input_name: batch})
            if i:
                times.append((time.perf_counter() - start) * 1000.0)
        for i in members:
            out[i] = float(np.median(times)) / len(batch)
    return out


def fit_load(detectors: list[FaceDetector], sizes: list[tuple[int, int]], fps: list[float],
             names: list[str], max_batch: int = 1) -> float | None:
    """`fit_to_speed` for several cameras sharing one detector backend (`detectors`: one per camera, `sizes`
    their (height, width), `fps` their pipeline.target_fps): full size unless the whole load does not fit, then
    FALLBACK_SCALE for every camera. Returns the scale forced (None: unchanged)."""
    lead = detectors[0]
    total_fps = sum(f for f in fps if f > 0)
    if lead.input_scale is not None or total_fps <= 0:
        return None
    try:
        per_frame = load_ms(lead, sizes, lambda h, w: lead.scales_for(h, w)[0], max_batch)
    except Exception as exc:  # as in fit_to_speed: a failing detector fails frames closed in the loop
        log.warning("could not time the detector (%s): full size kept", type(exc).__name__)
        return None
    # the detector's busy time per second of the whole load, as the mean per frame at the total frame rate
    busy_ms = sum(ms * f for ms, f in zip(per_frame, fps) if f > 0)
    scale = choose_scale(busy_ms / total_fps, total_fps)
    fulls = [d.scales_for(h, w)[0] for d, (h, w) in zip(detectors, sizes, strict=True)]
    for detector, full, ms, name in zip(detectors, fulls, per_frame, names, strict=True):
        if scale is not None and scale < full:
            detector.input_scale = scale
            log.warning("camera %s: detecting at %.2gx: at %.2gx the %d cameras' %g frames/s would keep the "
                        "detector busy %.0f ms a second (%.0f ms a frame of this camera), more than %.0f%%", name,
                        scale, full, len(detectors), total_fps, busy_ms, ms, DETECT_SHARE * 100)
        else:
            log.info("camera %s: detector at %.2gx (%.0f ms a frame of this camera; the %d cameras' %g frames/s "
                     "keep it busy %.0f ms a second): full size kept", name, full, ms, len(detectors), total_fps,
                     busy_ms)
    return scale


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
