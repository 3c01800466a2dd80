"""Videos have a pixel limit, checked from the stream header before decoding: frame size and total pixels.

The bomb is what the issue found: a 1.7 MB two-frame MJPEG whose frames really are 12000x12000 (black JPEGs
compress to almost nothing). It is refused from its header, by a real `edgeanon anonymize` process whose peak
memory is measured from a parent of its own.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edgeanon.config import MAX_PIXELS
from edgeanon.sources import Backoff, LiveSource
from edgeanon.video import VideoError, VideoReader

REPO = Path(__file__).resolve().parents[2]
# Runs the command given as JSON argv and prints its exit code and peak memory (kB): this parent has no other child.
MEASURE = ("import json, resource, subprocess, sys; r = subprocess.run(json.loads(sys.argv[1]), capture_output=True, "
           "text=True); print(json.dumps([r.returncode, r.stderr, resource.getrusage(resource.RUSAGE_CHILDREN)"
           ".ru_maxrss]))")


def mjpeg_avi(path: Path, sizes: list[tuple[int, int]]) -> Path:
    """An MJPEG .avi of black frames of these (width, height), the first one's size in the header."""
    container = av.open(str(path), "w")
    stream = container.add_stream("mjpeg", rate=10)
    stream.width, stream.height = sizes[0]
    stream.pix_fmt = "yuvj420p"
    for i, (width, height) in enumerate(sizes):
        ok, jpeg = cv2.imencode(".jpg", np.zeros((height, width), np.uint8))
        assert ok
        packet = av.Packet(jpeg.tobytes())
        packet.stream = stream
        packet.pts = packet.dts = i
        container.mux(packet)
    container.close()
    return path


def small_video(path: Path, frames: int = 8, fmt: str | None = None) -> Path:
    """A real 320x240 H.264 (or MJPEG for .avi) video of grey frames."""
    container = av.open(str(path), "w", format=fmt)
    stream = container.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), 20 * i, np.uint8), format="bgr24")
        frame.pts, frame.time_base = i, Fraction(1, 10)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return path


def measured(*args) -> tuple[int, str, int]:
    """(exit code, stderr, peak memory in MB) of `edgeanon ARGS` run as its own process."""
    argv = [sys.executable, "-m", "edgeanon", *map(str, args)]
    out = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(argv)], capture_output=True, text=True,
                         timeout=600, cwd=REPO, check=True)
    code, stderr, peak_kb = json.loads(out.stdout)
    return code, stderr, peak_kb // 1024


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    path = mjpeg_avi(tmp_path_factory.mktemp("bomb") / "bomb.avi", [(12000, 12000)] * 2)
    assert path.stat().st_size < 4 << 20
    return path


def test_huge_frames_are_refused_from_the_header_before_decoding(bomb, tmp_path, detector_model):
    out = tmp_path / "out.mp4"
    code, stderr, peak_mb = measured("anonymize", bomb, "-o", out, "--method", "blur",
                                     "--detector-model", detector_model)
    assert code == 1, stderr
    assert f"bomb.avi: 12000x12000 frames are larger than {MAX_PIXELS} pixels; not decoded" in stderr
    assert "Traceback" not in stderr and not out.exists()
    # one decoded 12000x12000 frame alone is 216 MB (YUV) and 432 MB (BGR); the issue measured 5.8 GB
    assert peak_mb < 600, f"peak memory {peak_mb} MB: frames were decoded"


def test_reader_refuses_before_decoding_a_frame(bomb):
    with pytest.raises(VideoError, match="12000x12000 frames are larger than"):
        VideoReader(bomb)


def test_a_frame_that_grows_mid_stream_is_not_decoded(tmp_path, detector_model):
    """The header says 64x64 (the first frame); the second frame is 12000x12000: FFmpeg's decoder refuses it."""
    path = mjpeg_avi(tmp_path / "grows.avi", [(64, 64), (12000, 12000), (64, 64)])
    with VideoReader(path) as reader:
        assert (reader.info.width, reader.info.height) == (64, 64)
        assert len(list(reader)) < 3 and not reader.complete
    code, stderr, peak_mb = measured("anonymize", path, "-o", tmp_path / "out.mp4", "--method", "blur",
                                     "--detector-model", detector_model)
    assert code == 1 and "grows.avi: truncated or corrupt" in stderr and "Traceback" not in stderr
    assert peak_mb < 600, f"peak memory {peak_mb} MB: the large frame was decoded"


def test_total_pixels_over_the_budget_are_refused_from_the_header(tmp_path, detector_model):
    video = small_video(tmp_path / "clip.mp4")  # 8 frames of 320x240: 614,400 pixels
    out = tmp_path / "out.mp4"
    result = subprocess.run([sys.executable, "-m", "edgeanon", "anonymize", str(video), "-o", str(out),
                             "--method", "blur", "--video-gigapixels", "0.0005", "--detector-model",
                             str(detector_model)], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 1, result.stderr
    assert "clip.mp4: 8 frames of 320x240 are more than 0.0005 billion pixels in all; not decoded" in result.stderr
    assert not out.exists() and "Traceback" not in result.stderr
    # within the budget, the same file goes through
    result = subprocess.run([sys.executable, "-m", "edgeanon", "anonymize", str(video), "-o", str(out),
                             "--method", "blur", "--video-gigapixels", "0.001", "--detector-model",
                             str(detector_model)], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr and out.is_file()


def test_budget_is_counted_while_decoding_when_the_header_declares_no_frame_count(tmp_path):
    video = small_video(tmp_path / "clip.mkv", fmt="matroska")  # Matroska declares no frame count
    with VideoReader(video) as probe:
        assert probe.info.frame_count == 0
    with VideoReader(video, max_total_pixels=320 * 240 * 3.5) as reader:
        frames = []
        with pytest.raises(VideoError, match="clip.mkv: more than .* billion pixels in all .* stopped after 3 frames"):
            for frame in reader:
                frames.append(frame)
    assert len(frames) == 3


def test_budget_option_is_checked(tmp_path, detector_model):
    video = small_video(tmp_path / "clip.mp4", frames=2)
    for bad, message in (("0", "--video-gigapixels must be greater than 0"),
                         ("inf", "--video-gigapixels must be a finite number")):
        result = subprocess.run([sys.executable, "-m", "edgeanon", "anonymize", str(video), "-o",
                                 str(tmp_path / "o.mp4"), "--video-gigapixels", bad], capture_output=True,
                                text=True, timeout=600, cwd=REPO)
        assert result.returncode == 2 and message in result.stderr, result.stderr


# -- the daemon's sources: the same limit, from the capture's header ------------------------------------------

def test_the_daemon_refuses_a_file_source_whose_header_claims_huge_frames(bomb):
    code, stderr, peak_mb = measured("run", "--source", f"file://{bomb}", "--method", "blur")
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("INFO ")]
    assert code == 2 and len(lines) == 1, stderr
    assert f"12000x12000 frames, more than {MAX_PIXELS} pixels; not decoded" in lines[0] and "Traceback" not in stderr
    assert peak_mb < 600, f"peak memory {peak_mb} MB: frames were decoded"


def test_a_live_source_whose_stream_claims_huge_frames_gives_no_frame(bomb, caplog):
    with caplog.at_level(logging.ERROR, logger="edgeanon.sources"):
        source = LiveSource(f"file://{bomb}", lambda: cv2.VideoCapture(str(bomb), cv2.CAP_FFMPEG),
                            Backoff(60.0, 60.0))
        try:
            assert source.read(timeout=3.0) is None
        finally:
            source.close()
    assert "12000x12000 frames, more than" in caplog.text and source.stats()["connected"] is False
