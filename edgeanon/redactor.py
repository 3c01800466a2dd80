"""The one per-frame chain, shared by the offline CLI and the daemon: detect -> track -> anonymize.

Faces always; licence plates too when a PlateStage is given (`[plates] enabled`, `--plates`). Both detectors look
at the raw frame before anything is covered, and a fault of either fails the frame closed. Built by
`from_config` from the [model] config (edgeanon.config.ModelConfig), the same for the CLI and the daemon; the
chain has passed the detectors' start-up self-tests (edgeanon.selftest).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.gan import FaceGenerator
from edgeanon.anonymize.ksame import BankError, KSameFaces
from edgeanon.config import ModelConfig
from edgeanon.defaults import IMAGE_PROFILE, MADE_UP, PLATE_HOLD_S, VIDEO_PROFILE
from edgeanon.detector import FaceDetector
from edgeanon.frames import Frame, RedactedFrame
from edgeanon.inference.errors import ModelError
from edgeanon.models import bank_path, detector_path, generator_path, resolve_method
from edgeanon.scenecut import CutDetector
from edgeanon.selftest import check_detector
from edgeanon.tracker import Tracker

if TYPE_CHECKING:
    from edgeanon.config import PlatesConfig


class PlateStage:
    """The plates of each frame: the plate detector on every `every`th frame, the tracker holding the plates in
    between (and through a missed detection); without a tracker (stills) the detector runs on every frame."""

    def __init__(self, detector: Any, tracker: Tracker | None = None, every: int = 1):
        if every < 1:
            raise ValueError(f"plates every must be >= 1 frame, got {every}")
        self.detector = detector
        self.tracker = tracker
        self.every = every if tracker is not None else 1
        self._count = 0
        self._doubtful: list[Any] = []
        self._last_time: float | None = None
        self._base_hold = tracker.hold_s if tracker is not None else 0.0

    def find(self, frame: Frame, cut: bool = False) -> list[Any]:
        """The plates to cover in this frame (raw pixels; a PlateFault propagates)."""
        detect = self._count % self.every == 0 or cut
        self._count += 1
        if self.tracker is None:
            return self.detector.detect(frame.image)
        if cut:
            self.tracker.cut()
        self._hold_through_skips(frame.track_time)
        size = frame.image.shape[:2]
        if not detect:
            # doubtful plates start no track: the last detection's stay covered where they were until the next
            return self.tracker.update((), frame.track_time, size) + self._doubtful
        found = self.detector.detect(frame.image)
        self._doubtful = [p for p in found if not p.confident] if self.every > 1 else []
        return self.tracker.update(found, frame.track_time, size)

    def _hold_through_skips(self, timestamp: float) -> None:
        """With `every` > 1, hold a lost plate at least until the next detection at this stream's frame rate."""
        if self.every > 1 and self._last_time is not None and timestamp > self._last_time:
            self.tracker.hold_s = max(self._base_hold, 1.5 * self.every * (timestamp - self._last_time))
        self._last_time = timestamp

    def reset(self) -> None:
        self._count = 0
        self._last_time = None
        self._doubtful = []
        if self.tracker is not None:
            self.tracker.reset()


class Redactor:
    """Finds the faces of a frame, keeps lost ones covered (when tracking), and anonymizes them all."""

    def __init__(self, detector: Any, anonymizer: Anonymizer, tracker: Tracker | None = None,
                 cuts: CutDetector | None = None, plates: PlateStage | None = None):
        self.detector = detector
        self.anonymizer = anonymizer
        self.tracker = tracker
        self.cuts = cuts if cuts is not None else (CutDetector() if tracker is not None else None)
        self.plates = plates

    def process(self, frame: Frame) -> RedactedFrame:
        """Redact one frame in place; every face the detector or tracker knows is handled.

        A detector fault (edgeanon.detector.DetectorFault) propagates: the caller fails closed.
        """
        faces = self.detector.detect(frame.image)
        cut = self.cuts is not None and self.cuts.is_cut(frame.image)
        plates = self.plates.find(frame, cut) if self.plates is not None else ()
        if self.tracker is not None:
            if cut:
                self.tracker.cut()
            faces = self.tracker.update(faces, frame.track_time, frame.image.shape[:2])
        return self.anonymizer.redact(frame, faces, plates)

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
        if self.plates is not None:
            self.plates.reset()

    @property
    def method(self) -> str:
        """The method this chain serves faces with (a face served otherwise got the fallback)."""
        return self.anonymizer.method

    @classmethod
    def from_config(cls, model: ModelConfig, video: bool = False, extra_scales: tuple[float, ...] | None = None,
                    backend: str = "auto", self_test: bool = True, plates: PlatesConfig | None = None) -> Redactor:
        """Build the chain from the [model] config, as the daemon and `edgeanon anonymize` both do.

        `video` picks the detector profile for video and streams (edgeanon.defaults.VIDEO_PROFILE) instead
        of the one for still images (IMAGE_PROFILE); the config's unset values take that profile's.
        `extra_scales` overrides the profile's further scales (() none). The method is
        edgeanon.models.resolve_method's. Raises ModelError for a missing or broken model (including a failed
        self-test), ValueError for a bad option. `plates` (edgeanon.config.PlatesConfig), when enabled, adds the
        plate detector and its cover.
        """
        profile = VIDEO_PROFILE if video else IMAGE_PROFILE
        detector_file = detector_path(model)
        detector = FaceDetector.from_path(
            detector_file, backend=backend, threads=model.threads or None, profile=profile,
            threshold=model.threshold, low_threshold=model.low_threshold, input_scale=model.input_scale or None,
            extra_scales=None if extra_scales is None else tuple(extra_scales),
        )
        if self_test:
            check_detector(detector, str(detector_file))
        method = resolve_method(model)
        generator = load_made_up(method, model, backend) if method in MADE_UP else None
        plate_stage = plate_cover = None
        if plates is not None and plates.enabled:
            plate_stage, plate_cover = load_plates(plates, backend=backend, threads=model.threads or None,
                                                   track=model.track, self_test=self_test)
        anonymizer = Anonymizer(method, generator=generator, mask_scale=model.mask_scale, mask_shape=model.mask_shape,
                                plate_cover=plate_cover)
        return cls(detector, anonymizer, Tracker(hold_s=model.hold_s) if model.track else None, plates=plate_stage)


def load_plates(cfg: PlatesConfig, backend: str = "auto", threads: int | None = None, track: bool = True,
                self_test: bool = True) -> tuple[PlateStage, Any]:
    """The plate stage and cover of a PlatesConfig, or ModelError naming what is missing (the model is not
    shipped: its weights are AGPL-3.0)."""
    # imported here: the plate modules load only when plates are on
    from edgeanon.anonymize.plates import PlateCover
    from edgeanon.models import DEFAULT_PLATES
    from edgeanon.plates import PlateDetector
    from edgeanon.selftest import check_plates

    path = Path(cfg.model) if cfg.model else DEFAULT_PLATES
    if not path.is_file():
        raise ModelError(f"{path}: plate detector not found (make it with `python -m export plates --from fastanpr`; "
                         "its weights are AGPL-3.0)")
    detector = PlateDetector.from_path(path, backend=backend, threads=threads, threshold=cfg.threshold,
                                       low_threshold=cfg.low_threshold)
    if self_test:
        check_plates(detector, str(path))
    # A plate seen once is a plate: held from its first detection (no confirmation), through skipped frames.
    tracker = Tracker(hold_s=PLATE_HOLD_S, confirm_hits=1) if track else None
    return PlateStage(detector, tracker, cfg.every), PlateCover(cfg.method, cfg.mask_scale)



def load_made_up(method: str, model: ModelConfig, backend: str = "auto") -> FaceGenerator | KSameFaces:
    """What makes up the faces of a made-up method (MADE_UP): gan's generator or ksame's reference bank."""
    if method == "ksame":
        try:
            return KSameFaces.from_path(bank_path(model))
        except BankError as exc:
            raise ModelError(f"{exc} (use method blur, or give the bank's path)") from exc
    return load_generator(generator_path(model), backend=backend, threads=model.threads or None)


def load_generator(path: Path, backend: str = "auto", threads: int | None = None) -> FaceGenerator:
    """The face generator (edgeanon.anonymize.gan), or ModelError naming what is missing."""
    if not path.is_file():
        raise ModelError(f"{path}: generator model not found (use method blur, or give the generator's path)")
    return FaceGenerator.from_path(path, backend=backend, threads=threads)
