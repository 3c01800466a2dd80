"""The daemon loop and its publisher's health: watchdog fed only while frames leave, failure is an exit code.

Real pieces throughout: the clip's faces, the detector on ONNX Runtime, a real mosquitto (stopped with
SIGSTOP to play a broker that holds the connection but answers nothing), a real notify socket.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from devkit.broker import Broker, mosquitto_binary
from devkit.daemon_kit import make_clip
from devkit.notify import NotifySocket
from edgeanon.config import Config, MqttConfig, PipelineConfig, SourceConfig, model_config
from edgeanon.pipeline import Pipeline
from edgeanon.publish.mqtt import MqttPublisher
from edgeanon.redactor import Redactor
from edgeanon.sources import FileSource
from edgeanon.systemd import Notifier

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "faces.avi", frames=6, size=(320, 180), fps=10.0)


@pytest.fixture(scope="module")
def redactor(detector_model) -> Redactor:
    return Redactor.from_config(model_config(detector=str(detector_model), method="blur", threads=1), video=True)


def make_pipeline(clip: Path, redactor: Redactor, mqtt: MqttConfig, notifier: Notifier) -> Pipeline:
    cfg = Config(camera_id="cam", source=SourceConfig(uri=f"file://{clip}", loop=True, realtime=True),
                 pipeline=PipelineConfig(deadline_ms=60_000.0, stats_interval_s=1.0), mqtt=mqtt)
    source = FileSource(str(clip), realtime=True, loop=True)
    return Pipeline(cfg, source, redactor, MqttPublisher(mqtt, "cam"), notifier)


def test_watchdog_is_fed_only_while_frames_leave(tmp_path, clip, redactor):
    broker = Broker(tmp_path / "b").start()
    watchdog = NotifySocket()
    # WATCHDOG_USEC 2 s: pings every 0.5 s; frames waiting 1 s in vain stop them.
    notifier = Notifier(environ={"NOTIFY_SOCKET": watchdog.path, "WATCHDOG_USEC": "2000000"})
    mqtt = MqttConfig(host="127.0.0.1", port=broker.port, keepalive_s=60, reconnect_min_s=1, reconnect_max_s=2)
    pipeline = make_pipeline(clip, redactor, mqtt, notifier)
    pipeline.publisher.start()
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(pipeline.run()))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while pipeline.publisher.stats()["acked"] < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pipeline.publisher.stats()["acked"] >= 3, pipeline.publisher.stats()
        healthy_from = time.monotonic()
        time.sleep(2.0)
        os.kill(broker._proc.pid, signal.SIGSTOP)  # connected, but nothing is acknowledged any more
        stopped_at = time.monotonic()
        try:
            time.sleep(4.0)
        finally:
            os.kill(broker._proc.pid, signal.SIGCONT)
        resumed_at = time.monotonic()
        time.sleep(3.0)
        assert watchdog.pings_between(healthy_from, stopped_at) >= 2, "fed while frames leave"
        assert watchdog.pings_between(stopped_at + 2.5, resumed_at) == 0, "not fed while frames wait in vain"
        assert watchdog.pings_between(resumed_at + 1.0, time.monotonic()) >= 1, "fed again once they leave"
    finally:
        pipeline.request_stop()
        runner.join(30)
        watchdog.close()
        broker.stop()
    assert result == [0]


def test_a_failed_publisher_ends_the_loop_with_exit_code_1(tmp_path, clip, redactor, caplog):
    with Broker(tmp_path / "b") as broker:
        # Built without validation on purpose: the same sender error load_config now refuses up front.
        mqtt = dataclasses.replace(MqttConfig(host="127.0.0.1", port=broker.port), frame_expiry_s=5_000_000_000)
        pipeline = make_pipeline(clip, redactor, mqtt, Notifier(socket_path=""))
        pipeline.publisher.start()
        assert pipeline.publisher.wait_connected(10)
        result: list[int] = []
        runner = threading.Thread(target=lambda: result.append(pipeline.run()))
        runner.start()
        runner.join(120)
        if runner.is_alive():
            pipeline.request_stop()
            runner.join(10)
            pytest.fail("the loop kept running on a failed publisher")
    assert result == [1]
    assert "publisher failed" in caplog.text and "send errors in a row" in caplog.text


def test_raw_pixels_are_wiped_when_no_frame_comes(tmp_path, clip, redactor):
    """A camera that delivers one pass of the clip and is then gone: while the loop waits for it, the
    detector's input buffer no longer holds the last frame (a raw frame lives no longer than one frame)."""
    import cv2

    from edgeanon.sources import Backoff, LiveSource

    opened: list[bool] = []

    def camera():
        if opened:
            return None  # gone after one pass
        opened.append(True)
        return cv2.VideoCapture(str(clip))

    with Broker(tmp_path / "b") as broker:
        mqtt = MqttConfig(host="127.0.0.1", port=broker.port)
        cfg = Config(camera_id="cam", pipeline=PipelineConfig(deadline_ms=60_000.0), mqtt=mqtt)
        source = LiveSource("test://camera", camera, Backoff(30.0, 30.0))
        pipeline = Pipeline(cfg, source, redactor, MqttPublisher(mqtt, "cam"))
        pipeline.publisher.start()
        runner = threading.Thread(target=pipeline.run)
        runner.start()
        try:
            buffers = redactor.detector._buffers
            deadline = time.monotonic() + 60
            while not (pipeline.counters.frames_in and not source.connected) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert pipeline.counters.frames_in >= 1 and not source.connected
            deadline = time.monotonic() + 10
            while any(b.any() for b in buffers.values()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert runner.is_alive(), "still waiting for the camera"
            assert buffers and not any(b.any() for b in buffers.values()), "the last frame is still in memory"
        finally:
            pipeline.request_stop()
            runner.join(30)
