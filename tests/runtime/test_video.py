"""Video through PyAV on real clips made here: quality of a plain re-encode, audio copied, timing and size kept."""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from edgeanon.cli import main
from edgeanon.video import VideoError, VideoReader, VideoWriter

FPS = 10
FRAMES = 20
SAMPLE_RATE = 16000


def panning_frames(face_image: np.ndarray, frames: int = FRAMES, size: tuple[int, int] = (320, 240)) -> list:
    """The astronaut (a real face) panning 6 px per frame."""
    w, h = size
    return [np.ascontiguousarray(face_image[20:20 + h, 60 + 6 * i: 60 + 6 * i + w]) for i in range(frames)]


def tone(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)[None]  # mono, (1, samples)


def write_clip(path: Path, frames: list[np.ndarray], audio_codec: str | None = "aac", fmt: str | None = None,
               rotation: int = 0) -> None:
    """A camera-like clip: high-quality H.264 video and, unless audio_codec is None, a 440 Hz tone."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"crf": "10", "preset": "veryfast"}
        if rotation:
            video.set_display_rotation(rotation)
        audio = None
        if audio_codec:
            audio = out.add_stream(audio_codec, rate=SAMPLE_RATE)
            audio.layout = "mono"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            samples = av.AudioFrame.from_ndarray(tone(len(frames) / FPS), format="s16", layout="mono")
            samples.sample_rate, samples.pts = SAMPLE_RATE, 0
            out.mux(audio.encode(samples))
            out.mux(audio.encode(None))


def audio_packets(path: Path) -> tuple[str, list[tuple[int, bytes]]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return stream.codec_context.name, [
            (round(float(p.pts * p.time_base) * SAMPLE_RATE), bytes(p)) for p in container.demux(stream)
            if p.size]


def decoded(path: Path) -> tuple[list[float], list[np.ndarray]]:
    with VideoReader(path) as reader:
        frames = list(reader)
    return [f.timestamp for f in frames], [f.image for f in frames]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10 * float(np.log10(255**2 / mse))


def test_plain_reencode_keeps_quality_frames_timing_and_audio(tmp_path, face_image):
    src = tmp_path / "walk.mp4"
    write_clip(src, panning_frames(face_image))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"walk.mp4": []}))  # no region: only the re-encode touches pixels
    target = tmp_path / "walk.anon.mp4"
    assert main(["anonymize", str(src), "-o", str(target), "--boxes", str(boxes), "--method", "blur"]) == 0

    with VideoReader(target) as r:
        assert (r.info.width, r.info.height, r.info.frame_count, r.info.fps) == (320, 240, FRAMES, FPS)
        assert r.info.has_audio
    with av.open(str(target)) as out:
        assert out.streams.video[0].codec_context.name == "h264"
    times_in, source = decoded(src)
    times_out, output = decoded(target)
    assert len(output) == FRAMES and times_out == pytest.approx(times_in, abs=1e-3)
    scores = [psnr(a, b) for a, b in zip(output, source, strict=True)]
    assert np.mean(scores) >= 36.0, scores
    assert audio_packets(target) == audio_packets(src)  # every audio packet, byte for byte, at its time
    assert audio_packets(src)[0] == "aac" and len(audio_packets(src)[1]) > 10
    assert not list(tmp_path.glob(".*partial*"))


def test_redacted_video_keeps_its_audio(tmp_path, face_image, detector_model):
    src = tmp_path / "walk.mkv"
    write_clip(src, panning_frames(face_image, frames=6), audio_codec="libopus", fmt="matroska")
    target = tmp_path / "walk.anon.mkv"
    assert main(["anonymize", str(src), "-o", str(target), "--method", "fill",
                 "--detector-model", str(detector_model)]) == 0
    assert audio_packets(target) == audio_packets(src)
    _, source = decoded(src)
    _, output = decoded(target)
    assert all(psnr(a, b) < 30 for a, b in zip(output, source, strict=True))  # every frame's face was filled


def test_audio_the_output_cannot_hold_is_dropped_with_a_warning(tmp_path, face_image, caplog):
    src = tmp_path / "phone.avi"
    write_clip(src, panning_frames(face_image, frames=5), audio_codec="pcm_mulaw", fmt="avi")
    target = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING), VideoReader(src) as reader, \
            VideoWriter(target, reader.info.fps, (320, 240), audio_from=src) as writer:
        for frame in reader:
            writer.write(frame.image, frame.timestamp)
    assert "pcm_mulaw" in caplog.text and "without sound" in caplog.text
    with VideoReader(target) as r:
        assert not r.info.has_audio and sum(1 for _ in r) == 5


def test_variable_frame_timing_survives(tmp_path, face_image):
    times = [0.0, 0.1, 0.25, 0.3, 0.7, 0.75]  # a camera that stutters
    target = tmp_path / "vfr.mkv"
    with VideoWriter(target, 10.0, (320, 240), time_base=Fraction(1, 1000)) as writer:
        for t, image in zip(times, panning_frames(face_image, frames=len(times)), strict=True):
            writer.write(image, t)
    got, _ = decoded(target)
    assert got == pytest.approx(times, abs=1e-3)


def test_rotated_phone_video_comes_out_upright(tmp_path, face_image):
    frames = panning_frames(face_image, frames=3)
    src = tmp_path / "portrait.mp4"
    write_clip(src, frames, audio_codec=None, rotation=90)  # stored landscape, shown turned a quarter left
    with VideoReader(src) as r:
        assert (r.info.width, r.info.height) == (240, 320)
        image = next(iter(r)).image
    assert psnr(image, np.rot90(frames[0])) > 35


def test_odd_sized_video_keeps_its_size(tmp_path, face_image):
    target = tmp_path / "odd.mp4"
    with VideoWriter(target, 10.0, (321, 241)) as writer:
        for image in panning_frames(face_image, frames=3, size=(321, 241)):
            writer.write(image)
    with VideoReader(target) as r:
        assert (r.info.width, r.info.height) == (321, 241) and sum(1 for _ in r) == 3


def test_writer_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(VideoError, match="cannot write .gif"):
        VideoWriter(tmp_path / "a.gif", 10.0, (320, 240))
    with pytest.raises(VideoError, match="frame rate"):
        VideoWriter(tmp_path / "a.mp4", 0.0, (320, 240))
    with VideoWriter(tmp_path / "empty.mp4", 10.0, (320, 240)):
        pass  # no frame written: no file
    assert list(tmp_path.iterdir()) == []
