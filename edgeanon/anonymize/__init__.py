"""The anonymizer: handles every face (generator or classic) and every plate of a frame, and alone makes
RedactedFrames."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeanon.anonymize import classic
from edgeanon.anonymize.plates import PlateCover
from edgeanon.defaults import DEFAULT_MASK_SHAPE, FALLBACK_METHOD, MADE_UP, MASK_SHAPES, METHODS
from edgeanon.frames import FaceRecord, Frame, RedactedFrame, _claim_factory

log = logging.getLogger(__name__)
# The one RedactedFrame factory, handed out once by edgeanon.frames to this module alone.
_make_redacted = _claim_factory()


class Anonymizer:
    """Replaces faces in place: `method` for each face, the blur fallback wherever the generator can't serve.

    The made-up methods (MADE_UP: gan, ksame) need `generator`, anything with gan.FaceGenerator's `replace`
    (a FaceGenerator for gan, a ksame.KSameFaces for ksame).

    Faces are `Detection`s or tracker `Track`s (anything with `.box`, `.score`, `.landmarks`;
    a `.track_id` is recorded and seeds the generator, so a tracked person keeps one face). A face whose
    `.confident` is False (a doubtful candidate) gets the blur fallback whatever the method.
    """

    def __init__(
        self,
        method: str,
        generator: Any = None,
        mask_scale: float = classic.DEFAULT_MASK_SCALE,
        mask_shape: str = DEFAULT_MASK_SHAPE,
        feather: float = classic.DEFAULT_FEATHER,
        blur_cells: int = classic.BLUR_CELLS,
        pixelate_blocks: int = classic.PIXELATE_BLOCKS,
        fill_color: tuple[int, int, int] = (0, 0, 0),
        plate_cover: PlateCover | None = None,
    ):
        if method not in METHODS:
            raise ValueError(f"unknown anonymization method {method!r}: choose one of {', '.join(METHODS)}")
        if method in MADE_UP and generator is None:
            raise ValueError(f"method {method!r} needs a generator (a FaceGenerator for gan, KSameFaces for ksame); "
                             "use blur, pixelate or fill without one")
        if mask_shape not in MASK_SHAPES:
            raise ValueError(f"unknown mask shape {mask_shape!r}: choose {' or '.join(MASK_SHAPES)}")
        if not (np.isfinite(mask_scale) and mask_scale > 0):
            raise ValueError(f"mask scale must be a positive number, got {mask_scale}")
        if not 0 <= feather <= 1:
            raise ValueError(f"feather must be within [0, 1], got {feather}")
        if blur_cells < 1 or pixelate_blocks < 1:
            raise ValueError("blur cells and pixelate blocks must be at least 1")
        self.method = method
        self.generator = generator
        self.mask_scale = float(mask_scale)
        self.mask_shape = mask_shape
        self.feather = float(feather)
        self.blur_cells = int(blur_cells)
        self.pixelate_blocks = int(pixelate_blocks)
        self.fill_color = tuple(int(c) for c in fill_color)
        self.plate_cover = plate_cover or PlateCover()

    def redact(self, frame: Frame, faces: Sequence[Any], plates: Sequence[Any] = ()) -> RedactedFrame:
        """Anonymize every face and every plate of `frame` in place and return the RedactedFrame (the only way to
        get one)."""
        faces = list(faces)
        # Doubtful candidates (Detection.confident False) get the plain blur: cover it, without a made-up face.
        methods = [self.method if getattr(face, "confident", True) else FALLBACK_METHOD for face in faces]
        if self.method in MADE_UP:
            wanted = [i for i, m in enumerate(methods) if m == self.method]
            if wanted:
                served = self._generate(frame.image, [faces[i] for i in wanted])
                for i, ok in zip(wanted, served, strict=True):
                    methods[i] = self.method if ok else FALLBACK_METHOD
        for face, method in zip(faces, methods, strict=True):
            if method not in MADE_UP:
                self._classic(frame.image, face.box, method)
        records = tuple(
            FaceRecord(tuple(float(v) for v in face.box[:4]), method, getattr(face, "track_id", None))
            for face, method in zip(faces, methods, strict=True)
        )
        plate_records = self.plate_cover.cover(frame.image, plates) if plates else ()
        return _make_redacted(frame, records, plates=plate_records)

    def mask_all(self, frame: Frame) -> RedactedFrame:
        """Cover the whole frame with the fill colour (fail closed: nothing of the scene survives)."""
        frame.image[...] = self.fill_color
        return _make_redacted(frame, (), fully_masked=True)

    def _generate(self, image: np.ndarray, faces: list[Any]) -> list[bool]:
        seeds = [i if getattr(face, "track_id", None) is None else int(face.track_id) for i, face in enumerate(faces)]
        try:
            served = list(self.generator.replace(image, faces, seeds, mask_scale=self.mask_scale,
                                                 mask_shape=self.mask_shape, feather=self.feather))
        except Exception:  # any generator failure: every face gets the classic fallback, never left raw
            log.warning("generator failed on frame; using %s for its %d face(s)", FALLBACK_METHOD, len(faces),
                        exc_info=log.isEnabledFor(logging.DEBUG))
            return [False] * len(faces)
        if len(served) != len(faces):
            log.warning("generator answered %d of %d faces; using %s for all", len(served), len(faces),
                        FALLBACK_METHOD)
            return [False] * len(faces)
        return [bool(ok) for ok in served]

    def _classic(self, image: np.ndarray, box: np.ndarray, method: str) -> None:
        opts = {"mask_scale": self.mask_scale, "shape": self.mask_shape, "feather": self.feather}
        if method == "blur":
            classic.blur(image, box, cells=self.blur_cells, **opts)
        elif method == "pixelate":
            classic.pixelate(image, box, blocks=self.pixelate_blocks, **opts)
        else:
            classic.fill(image, box, color=self.fill_color, **opts)
