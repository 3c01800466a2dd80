"""Per-face cost of gan's runtime settings (issue 25): before (paste to 1.3x, no tone, no turn limit) and now,
and of ksame (a k-Same reference from the committed bank) beside them, with and without its age cue and its
likeness term (UNLIKE).

    .venv/bin/python -m bench.gan_face_cost

scikit-image's astronaut at half size (a face of about 50 px), one thread; each setting runs in turn 40 times
(interleaved, so machine load falls on all alike); prints each median and its ratio to "before" and to gan now.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from edgeanon.anonymize.gan import FaceGenerator
from edgeanon.anonymize.ksame import KSameFaces
from edgeanon.detector import FaceDetector
from edgeanon.models import DEFAULT_DETECTOR, DEFAULT_GENERATOR, DEFAULT_KSAME_BANK

ROUNDS = 40


def main() -> int:
    from skimage import data

    image = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), None, fx=0.5, fy=0.5,
                       interpolation=cv2.INTER_AREA)
    faces = [max(FaceDetector.from_path(DEFAULT_DETECTOR, threads=1).detect(image), key=lambda d: d.score)]
    before = FaceGenerator.from_path(DEFAULT_GENERATOR, backend="ort", threads=1, paste_rim=(1.15, 1.3),
                                     tone_source=None, max_turn=1.0)
    settings = {"before": before, "now (defaults)": FaceGenerator(before.backend),
                "rim 1.0-1.2": FaceGenerator(before.backend, paste_rim=(1.0, 1.2)),
                "rim + tone face": FaceGenerator(before.backend, paste_rim=(1.0, 1.2), tone_source="face"),
                "rim + tone surround": FaceGenerator(before.backend, paste_rim=(1.0, 1.2), tone_source="surround"),
                "ksame": KSameFaces.from_path(DEFAULT_KSAME_BANK),
                "ksame, no age cue": KSameFaces.from_path(DEFAULT_KSAME_BANK, age_window=0),
                "ksame, no unlike": KSameFaces.from_path(DEFAULT_KSAME_BANK, unlike=0)}
    times: dict[str, list[float]] = {k: [] for k in settings}
    for generator in settings.values():  # warm-up
        generator.replace(image.copy(), faces, [1])
    for _ in range(ROUNDS):
        for key, generator in settings.items():
            work = image.copy()
            start = time.perf_counter()
            generator.replace(work, faces, [1])
            times[key].append(time.perf_counter() - start)
    base, now = float(np.median(times["before"])), float(np.median(times["now (defaults)"]))
    for key, values in times.items():
        print(f"{key:<22} median {np.median(values) * 1000:7.2f} ms per face   ratio {np.median(values) / base:.3f}"
              f"   to gan now {np.median(values) / now:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
