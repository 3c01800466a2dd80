"""The daemon's automatic scale: full size where the machine keeps up, half size where it cannot."""

from __future__ import annotations

import logging

from edgeanon.defaults import VIDEO_PROFILE
from edgeanon.detector import FaceDetector
from edgeanon.speedfit import DETECT_SHARE, FALLBACK_SCALE, choose_scale, detection_ms, fit_to_speed


def test_the_rule():
    budget = DETECT_SHARE * 1000.0 / 10
    assert choose_scale(budget - 1, 10) is None
    assert choose_scale(budget + 1, 10) == FALLBACK_SCALE
    assert choose_scale(10_000.0, 0) is None  # target 0: always full size


def test_a_machine_too_slow_for_the_target_detects_at_half_size(detector_model, caplog):
    detector = FaceDetector.from_path(detector_model, profile=VIDEO_PROFILE)
    assert detection_ms(detector, 720, 1280, 1.0, runs=1) > 0
    with caplog.at_level(logging.WARNING, logger="edgeanon.speedfit"):
        assert fit_to_speed(detector, 720, 1280, target_fps=1e6) == FALLBACK_SCALE  # no machine keeps 1e6 fps
    assert detector.scales_for(720, 1280) == [FALLBACK_SCALE]
    assert "model.input_scale = 1.0" in caplog.text


def test_fast_enough_fixed_or_off_keeps_the_scale(detector_model):
    detector = FaceDetector.from_path(detector_model, profile=VIDEO_PROFILE)
    assert fit_to_speed(detector, 720, 1280, target_fps=0.001) is None  # 600 s a frame: full size fits
    assert fit_to_speed(detector, 720, 1280, target_fps=0) is None
    assert detector.scales_for(720, 1280) == [1.0]
    fixed = FaceDetector.from_path(detector_model, profile=VIDEO_PROFILE, input_scale=1.0)
    assert fit_to_speed(fixed, 720, 1280, target_fps=1e6) is None and fixed.input_scale == 1.0
