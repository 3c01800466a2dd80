"""`edgeanon run` under the faults it must not hide (issue 26), each with a real daemon process.

SIGABRT leaves no core; SIGHUP stops cleanly; a broker that never acknowledges, TLS against a plain port
and a broker's small packet limit are counted for what they are, never as delivered; a missing file://
source fails at once; a model that fails to load publishes `failed`, not `stopped`. Real mosquitto, real
ONNX Runtime, real faces; the broker that never acknowledges is a real TCP peer (devkit.broker.SilentBroker).
"""

from __future__ import annotations

import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit.broker import CERTS_SH, Broker, SilentBroker, mosquitto_binary
from devkit.daemon_kit import Collector, make_clip
from tests.runtime.test_daemon import REPO, base_config, start_daemon

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")

FRAMES = 8
# A final line may say what the broker acknowledged, never that anything was "published".
FINAL = re.compile(r"(stopped|failed): (\d+) in, (\d+) redacted; broker: (\d+) acknowledged, (\d+) refused, "
                   r"(\d+) unacknowledged of (\d+) handed to the MQTT client; (\d+) dropped")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "faces.avi", frames=FRAMES, size=(480, 270), fps=10.0)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Broker(tmp_path_factory.mktemp("broker")) as b:
        yield b


def looping(port: int, clip: Path, extra: str = "") -> str:
    """A config that keeps frames coming (the clip loops at its own pace) until the daemon is stopped."""
    return base_config(port, f"file://{clip}", extra).replace(
        "reconnect_max_s = 0.5\n", "reconnect_max_s = 0.5\nloop = true\nrealtime = true\n", 1)


def final_line(log: str) -> dict[str, int | str]:
    """The daemon's final line, parsed; every frame that came in is accounted for exactly once in it."""
    match = FINAL.search(log)
    assert match, f"no final line in:\n{log[-3000:]}"
    keys = ("word", "in", "redacted", "acked", "refused", "unacked", "handed", "dropped")
    line = {k: (v if k == "word" else int(v)) for k, v in zip(keys, match.groups())}
    assert line["in"] == line["acked"] + line["refused"] + line["unacked"] + line["dropped"], match.group(0)
    return line


def wait_for_log(daemon, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in daemon.stderr():
        assert daemon.proc.poll() is None, daemon.stderr()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} within {timeout}s:\n{daemon.stderr()[-3000:]}"
        time.sleep(0.1)


# -- no core dump -----------------------------------------------------------------------------------

def _cores_unlimited() -> None:
    """preexec_fn: `ulimit -c unlimited` (as far as the hard limit lets a non-root user go)."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (OSError, ValueError):
        hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def core_dir(pattern: str, cwd: Path) -> Path | None:
    """Where the kernel writes a core for a process in `cwd`; None when cores are piped to a program."""
    if pattern.startswith("|"):
        return None
    where = Path(pattern).parent
    return where if where.is_absolute() else cwd / where


def core_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return " ".join(line.split()[4:6])
    raise AssertionError("no core limit in /proc/PID/limits")


def test_sigabrt_leaves_no_core_with_ulimit_unlimited(tmp_path, clip, broker):
    """What systemd's watchdog does to a hung daemon (SIGABRT), with `ulimit -c unlimited`: no core file.

    The proof depends on the kernel's core_pattern. Where it is a file name (here: 'core', in the process's
    working directory) the test first shows that a dumpable Python in the same place with the same limit
    does leave a core (so the test can see one), then that the daemon, holding camera frames, leaves none.
    Where cores are piped to a collector, what the daemon sets is read instead: its RLIMIT_CORE in
    /proc/PID/limits and the non-dumpable flag it logs (the kernel writes no core for it, pipe or not).
    """
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    control_cwd, daemon_cwd = tmp_path / "control", tmp_path / "daemon"
    control_cwd.mkdir()
    daemon_cwd.mkdir()
    directory = core_dir(pattern, daemon_cwd)
    if directory is not None:
        before = set(core_dir(pattern, control_cwd).glob("*"))
        control = subprocess.run([sys.executable, "-c", "import os; os.abort()"], cwd=control_cwd,
                                 preexec_fn=_cores_unlimited, timeout=60)
        assert control.returncode == -signal.SIGABRT
        if not set(core_dir(pattern, control_cwd).glob("*")) - before:
            pytest.skip(f"even a dumpable process leaves no core here (core_pattern {pattern!r}, "
                        f"RLIMIT_CORE {resource.getrlimit(resource.RLIMIT_CORE)})")
        before = set(directory.glob("*")) if directory.is_dir() else set()
    daemon = start_daemon(tmp_path, looping(broker.port, clip), cwd=daemon_cwd, preexec_fn=_cores_unlimited)
    try:
        wait_for_log(daemon, "ready: first frame processed")  # raw frames have been in its memory
        limit = core_limit(daemon.proc.pid)
        daemon.proc.send_signal(signal.SIGABRT)
        rc = daemon.wait(60)
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    assert rc == -signal.SIGABRT, daemon.stderr()[-2000:]
    if directory is not None:
        after = set(directory.glob("*")) if directory.is_dir() else set()
        assert after - before == set(), f"the daemon left {sorted(after - before)}"
    assert limit == "0 0", f"RLIMIT_CORE of the daemon: {limit}"
    assert "core dumps off: RLIMIT_CORE 0/0, dumpable no" in daemon.stderr()


# -- SIGHUP -----------------------------------------------------------------------------------------

def test_sighup_stops_cleanly_like_sigterm(tmp_path, clip, broker):
    collector = Collector(broker.port, camera="cam1")
    daemon = start_daemon(tmp_path, looping(broker.port, clip))
    try:
        wait_for_log(daemon, "ready: first frame processed")
        assert collector.wait_for(lambda r: r.frames, 30)
        daemon.proc.send_signal(signal.SIGHUP)
        rc = daemon.wait(60)
        assert collector.wait_for(lambda r: r.available[-1:] == ["stopped"] and bool(r.finals()),
                                  10)
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        collector.close()
    log = daemon.stderr()
    assert rc == 0, log[-2000:]
    assert "SIGHUP received: stopping" in log and final_line(log)["word"] == "stopped"
    final = collector.received.final()
    assert final["mqtt"]["acked"] >= 1 and collector.received.available[-2:] == ["online", "stopped"]


# -- honest delivery --------------------------------------------------------------------------------

def test_a_broker_that_never_acknowledges_ends_in_failed_not_published(tmp_path, clip):
    with SilentBroker() as silent:
        extra = "no_ack_warn_s = 1.0\nno_ack_exit_s = 5.0\n"
        daemon = start_daemon(tmp_path, looping(silent.port, clip, extra))
        rc = daemon.wait(180)
        swallowed = silent.published
    log = daemon.stderr()
    assert rc == 1, log[-3000:]
    assert "no frame acknowledged for" in log and "connected, but the broker acknowledges nothing" in log
    final = final_line(log)
    assert final["word"] == "failed" and final["acked"] == 0 and final["handed"] >= 1 and swallowed >= 1, final
    assert "published" not in log


def test_tls_against_a_plain_port_ends_in_failed_not_published(tmp_path, clip, broker):
    pki = tmp_path / "pki"
    subprocess.run([str(CERTS_SH), "--dir", str(pki), "ca"], check=True, capture_output=True)
    extra = f'no_ack_warn_s = 1.0\nno_ack_exit_s = 5.0\n[mqtt.tls]\nca = "{pki / "ca.crt"}"\n'
    daemon = start_daemon(tmp_path, looping(broker.port, clip, extra))
    rc = daemon.wait(180)
    log = daemon.stderr()
    assert rc == 1, log[-3000:]
    assert "is the port a TLS listener?" in log and "no frame acknowledged for" in log
    final = final_line(log)
    assert final["word"] == "failed" and final["acked"] == final["handed"] == 0 and final["dropped"] > 0, final
    assert "published" not in log


def test_a_small_broker_packet_limit_is_honoured_end_to_end(tmp_path, clip):
    """mosquitto with max_packet_size 12000: before, each 480x270 frame (about 25 KB) got the daemon
    disconnected, `available` flapped, and the final line said every frame was published."""
    with Broker(tmp_path / "small", extra_config="max_packet_size 12000\n") as small:
        collector = Collector(small.port, camera="cam1")
        daemon = start_daemon(tmp_path, base_config(small.port, f"file://{clip}"))
        rc = daemon.wait()
        collector.wait_for(lambda r: r.available[-1:] == ["stopped"] and bool(r.finals()), 10)
        collector.close()
    log = daemon.stderr()
    assert rc == 0, log[-3000:]
    final = collector.received.final()["mqtt"]
    assert final["broker_max_packet"] == 12000 and final["connects"] == 1, final
    assert final["acked"] == final["handed"] == FRAMES == len(collector.received.frames), final
    assert all(len(jpeg) <= final["max_frame_bytes"] for _, jpeg in collector.received.frames)
    assert collector.received.available == ["online", "stopped"], "no flapping"
    assert final_line(log)["acked"] == FRAMES


# -- careless input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("uri, words", [
    ("file:///nonexistent/clip.mp4", "/nonexistent/clip.mp4 not found"),
    ("file://tmp/clip.mp4", "names the host 'tmp'; did you mean file:///tmp/clip.mp4?"),
])
def test_a_missing_file_source_fails_at_once_with_a_hint(uri, words):
    proc = subprocess.run([sys.executable, "-m", "edgeanon", "run", "--source", uri, "--method", "blur"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("INFO ")]
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_a_model_that_fails_to_load_publishes_failed_not_stopped(tmp_path, clip, broker):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    collector = Collector(broker.port, camera="cam1")
    daemon = start_daemon(tmp_path, base_config(broker.port, f"file://{clip}"), None, "--detector-model",
                          str(broken))
    rc = daemon.wait()
    arrived = collector.wait_for(lambda r: r.available[-1:] == ["failed"], 10)
    collector.close()
    assert rc == 1, daemon.stderr()[-2000:]
    # (the first message may be the retained one of an earlier test's daemon)
    assert arrived and collector.received.available[-2:] == ["online", "failed"], collector.received.available
