"""The chain's tracking with the real detector: monotonic time for live frames, and scene cuts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgeanon.config import model_config
from edgeanon.frames import Frame
from edgeanon.redactor import Redactor

FACE = (181, 58, 270, 178)  # the astronaut's face, x1 y1 x2 y2


def tracked(redacted) -> list:
    """The faces of a redacted frame that belong to a track (doubtful candidates have no track id)."""
    return [f for f in redacted.faces if f.track_id is not None]


@pytest.fixture
def chain(detector_model) -> Redactor:
    return Redactor.from_config(model_config(detector=str(detector_model), method="blur", track=True), video=True)


def hidden(image: np.ndarray) -> np.ndarray:
    """The same picture with the face painted over: the detector misses it, the tracker must not."""
    out = image.copy()
    x1, y1, x2, y2 = FACE
    out[y1:y2, x1:x2] = 128
    return out


@pytest.mark.parametrize("wall_step", [-3600.0, +3600.0])
def test_a_wall_clock_step_does_not_uncover_a_lost_face(chain, face_image, wall_step):
    for i in range(3):
        redacted = chain.process(Frame(i, 1000.0 + i / 25, face_image.copy(), clock=i / 25))
        assert len(tracked(redacted)) == 1
    # NTP steps the wall clock; the monotonic clock goes on by one frame
    lost = chain.process(Frame(3, 1000.0 + wall_step, hidden(face_image), clock=3 / 25))
    assert len(tracked(lost)) == 1


def test_frames_without_a_monotonic_clock_use_their_timestamp(chain, face_image):
    for i in range(3):
        chain.process(Frame(i, i / 25, face_image.copy()))
    assert len(tracked(chain.process(Frame(3, 3 / 25, hidden(face_image))))) == 1
    assert tracked(chain.process(Frame(4, 0.0, hidden(face_image)))) == []  # a seek back: a new stream


def test_a_scene_cut_drops_the_cover_of_faces_that_left(chain, face_image):
    for i in range(3):
        chain.process(Frame(i, i / 25, face_image.copy()))
    other = np.full_like(face_image, 30)
    cv2.rectangle(other, (50, 50), (200, 200), (200, 180, 160), -1)
    after_cut = chain.process(Frame(3, 3 / 25, other.copy()))
    assert after_cut.faces == ()
    assert np.array_equal(after_cut.image, other)  # nothing of the new scene was blurred
