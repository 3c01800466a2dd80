"""The one per-frame chain, shared by the offline CLI and the daemon: detect -> track -> anonymize."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeanon.anonymize import Anonymizer
from edgeanon.defaults import DEFAULT_HOLD_S, DEFAULT_MASK_SCALE
from edgeanon.frames import Frame, RedactedFrame
from edgeanon.inference.backend import ModelError
from edgeanon.tracker import Tracker


class Redactor:
    """Finds the faces of a frame, keeps lost ones covered (when tracking), and anonymizes them all."""

    def __init__(self, detector: Any, anonymizer: Anonymizer, tracker: Tracker | None = None):
        self.detector = detector
        self.anonymizer = anonymizer
        self.tracker = tracker

    def process(self, frame: Frame) -> RedactedFrame:
        """Redact one frame in place; every face the detector or tracker knows is handled."""
        faces = self.detector.detect(frame.image)
        if self.tracker is not None:
            faces = self.tracker.update(faces, frame.timestamp)
        return self.anonymizer.redact(frame, faces)

    def mask_all(self, frame: Frame) -> RedactedFrame:
        """Cover the whole frame (the fail-closed fallback for a frame that could not be redacted in time)."""
        return self.anonymizer.mask_all(frame)

    def reset(self) -> None:
        """Forget tracked faces (call between unrelated videos or streams)."""
        if self.tracker is not None:
            self.tracker.reset()

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
    ) -> Redactor:
        """Build the chain from model paths and options (None: the project's models and defaults).

        `video` picks the detector defaults for video and streams (edgeanon.detector.VIDEO_SCALING and
        VIDEO_THRESHOLD) instead of those for still images; `input_scale` None means automatic.
        Raises ModelError for a missing or broken model, ValueError for a bad option.
        """
        from edgeanon.defaults import DEFAULT_THRESHOLD, VIDEO_THRESHOLD
        from edgeanon.detector import IMAGE_SCALING, VIDEO_SCALING, FaceDetector
        from edgeanon.models import default_detector

        if threshold is None:
            threshold = VIDEO_THRESHOLD if video else DEFAULT_THRESHOLD
        detector = FaceDetector.from_path(
            Path(detector_model) if detector_model else default_detector(), backend=backend, threads=threads,
            threshold=threshold, input_scale=input_scale, scaling=VIDEO_SCALING if video else IMAGE_SCALING,
        )
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
