"""The one per-frame chain, shared by the offline CLI and the daemon: detect -> track -> anonymize.

Built by `from_options`, the chain has passed the detector's start-up self-test (edgeanon.selftest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeanon.anonymize import Anonymizer
from edgeanon.defaults import DEFAULT_HOLD_S, DEFAULT_MASK_SCALE
from edgeanon.frames import Frame, RedactedFrame
from edgeanon.inference.errors import ModelError
from edgeanon.scenecut import CutDetector
from edgeanon.tracker import Tracker


class Redactor:
    """Finds the faces of a frame, keeps lost ones covered (when tracking), and anonymizes them all."""

    def __init__(self, detector: Any, anonymizer: Anonymizer, tracker: Tracker | None = None,
                 cuts: CutDetector | None = None):
        self.detector = detector
        self.anonymizer = anonymizer
        self.tracker = tracker
        self.cuts = cuts if cuts is not None else (CutDetector() if tracker is not None else None)

    def process(self, frame: Frame) -> RedactedFrame:
        """Redact one frame in place; every face the detector or tracker knows is handled.

        A detector fault (edgeanon.detector.DetectorFault) propagates: the caller fails closed.
        """
        faces = self.detector.detect(frame.image)
        if self.tracker is not None:
            if self.cuts is not None and self.cuts.is_cut(frame.image):
                self.tracker.cut()
            faces = self.tracker.update(faces, frame.track_time, frame.image.shape[:2])
        return self.anonymizer.redact(frame, faces)

    def mask_all(self, frame: Frame) -> RedactedFrame:
        """Cover the whole frame (the fail-closed fallback for a frame that could not be redacted in time)."""
        return self.anonymizer.mask_all(frame)

    def forget_pixels(self) -> None:
        """Wipe what still holds the last frame's pixels (the detector's input buffers); the daemon calls it
        when no frame comes for a moment, so a raw frame is not kept longer than it is worked on."""
        self.detector.forget_pixels()

    def reset(self) -> None:
        """Forget tracked faces (call between unrelated videos or streams)."""
        if self.tracker is not None:
            self.tracker.reset()
        if self.cuts is not None:
            self.cuts.reset()

    @classmethod
    def from_options(
        cls,
        detector_model: str | Path | None = None,
        generator_model: str | Path | None = None,
        method: str = "gan",
        threshold: float | None = None,
        mask_scale: float = DEFAULT_MASK_SCALE,
        track: bool = True,
        hold_s: float = DEFAULT_HOLD_S,
        input_scale: float | None = None,
        mask_shape: str = "ellipse",
        backend: str = "auto",
        threads: int | None = None,
        video: bool = False,
        low_threshold: float | None = None,
        extra_scales: tuple[float, ...] | None = None,
        self_test: bool = True,
    ) -> Redactor:
        """Build the chain from model paths and options (None: the project's models and defaults).

        `video` picks the detector profile for video and streams (edgeanon.detector.VIDEO_PROFILE) instead
        of the one for still images (IMAGE_PROFILE); `threshold`, `low_threshold`, `input_scale` and
        `extra_scales` override the profile (`input_scale` None means automatic, `extra_scales` () none).
        Raises ModelError for a missing or broken model (including a failed self-test), ValueError for a
        bad option.
        """
        from edgeanon.detector import IMAGE_PROFILE, VIDEO_PROFILE, FaceDetector
        from edgeanon.models import default_detector
        from edgeanon.selftest import check_detector

        profile = VIDEO_PROFILE if video else IMAGE_PROFILE
        detector_path = Path(detector_model) if detector_model else default_detector()
        detector = FaceDetector.from_path(
            detector_path, backend=backend, threads=threads, profile=profile, threshold=threshold,
            low_threshold=low_threshold, input_scale=input_scale,
            extra_scales=None if extra_scales is None else tuple(extra_scales),
        )
        if self_test:
            check_detector(detector, str(detector_path))
        generator = load_generator(generator_model, backend=backend, threads=threads) if method == "gan" else None
        anonymizer = Anonymizer(method, generator=generator, mask_scale=mask_scale, mask_shape=mask_shape)
        return cls(detector, anonymizer, Tracker(hold_s=hold_s) if track else None)

def load_generator(path: str | Path | None = None, backend: str = "auto", threads: int | None = None) -> Any:
    """The face generator (edgeanon.anonymize.gan), or ModelError naming what is missing."""
    from edgeanon.models import DEFAULT_GENERATOR

    path = Path(path) if path else DEFAULT_GENERATOR
    if not path.is_file():
        raise ModelError(f"{path}: generator model not found (use --method blur, or build it)")
    try:
        from edgeanon.anonymize.gan import FaceGenerator
    except ImportError as exc:
        raise ModelError(f"{path}: the generator runtime is not available ({exc})") from exc
    return FaceGenerator.from_path(path, backend=backend, threads=threads)
