"""The evaluations' people: every evaluated face is a person of its own, stable across runs (as a track on camera)."""

from __future__ import annotations

import dataclasses

import numpy as np

from edgeanon.anonymize import Anonymizer
from edgeanon.frames import Frame
from export.eval.methods import as_people


def test_evaluations_give_every_face_its_own_stable_person(face_image, faces, generator):
    anon = Anonymizer("gan", generator=generator)
    outs = []
    for key in ("a.jpg", "b.jpg", "a.jpg"):
        image = face_image.copy()
        red = anon.redact(Frame(0, 0.0, image), as_people(faces, key))
        assert [r.method for r in red.faces] == ["gan"]
        outs.append(image)
    assert np.array_equal(outs[0], outs[2]), "the same file must give the same synthetic face"
    assert not np.array_equal(outs[0], outs[1]), "two people must not share one latent"
    two = as_people(faces * 2, "a.jpg")
    assert two[0].track_id != two[1].track_id
    assert np.array_equal(two[0].box, faces[0].box) and np.array_equal(two[0].landmarks, faces[0].landmarks)


def test_a_doubtful_face_stays_doubtful_and_gets_a_plain_blur(face_image, faces, generator):
    doubtful = [dataclasses.replace(f, confident=False) for f in faces]
    people = as_people(doubtful, "a.jpg")
    assert [p.confident for p in people] == [False]
    red = Anonymizer("gan", generator=generator).redact(Frame(0, 0.0, face_image.copy()), people)
    assert [r.method for r in red.faces] == ["blur"]
