"""No credentials in logs, error messages or doctor output: the scrubber, and real log lines and stderr."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit.process import stop_process
from edgeanon.config import ConfigError, config_from_dict
from edgeanon.scrub import ScrubFilter, UriError, install_log_scrubber, safe_uri, scrub, short_error, split_uri
from edgeanon.sources import Backoff, LiveSource, SourceError, parse_uri

REPO = Path(__file__).resolve().parents[2]
SECRETS = ("p@ss", "hunter2", "123456", "s3cr3t", "admin:")


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked: {text}"


@pytest.mark.parametrize("text, expected", [
    ("rtsp://admin:p@ss@host/s", "rtsp://***@host/s"),
    ("rtsp://admin:hunter2@10.0.0.5:554/stream", "rtsp://***@10.0.0.5:554/stream"),
    ("rtsp://admin:pa/ss@host/s", "rtsp://***@host/s"),  # a '/' in the password
    ("file:///a@b/clip.mp4", "file:///a@b/clip.mp4"),
    ("rtsp://host:554/s", "rtsp://host:554/s"),
    ("opening 'rtsps://u:s3cr3t@cam.lan/live' failed", "opening 'rtsps://***@cam.lan/live' failed"),
    ("gst://rtspsrc location=rtsp://admin:p@ss@cam/s user-id=admin user-pw=hunter2 ! decodebin ! appsink",
     "gst://rtspsrc location=rtsp://***@cam/s user-id=admin user-pw=*** ! decodebin ! appsink"),
    ("mqtt://u:hunter2@broker:1883", "mqtt://***@broker:1883"),
    ("http://h/x?token=abc&b=1", "http://h/x?token=***&b=1"),
    ('{"password": "x y"}', '{"password": ***}'),
    ("mqtt.password: set mqtt.username too", "mqtt.password: set mqtt.username too"),
])
def test_scrub(text, expected):
    assert scrub(text) == expected
    assert safe_uri(text) == expected


def test_live_source_log_lines_hold_no_credentials(caplog):
    """The real warning a camera that cannot be opened logs, for an RTSP URI and a gst pipeline."""
    caplog.set_level(logging.INFO)
    uris = ["rtsp://admin:p@ss@127.0.0.1:1/s",
            "gst://rtspsrc location=rtsp://admin:hunter2@cam/s user-pw=s3cr3t ! decodebin ! appsink"]
    for uri in uris:
        source = LiveSource(uri, lambda: None, Backoff(0.01, 0.02))
        try:
            assert source.read(timeout=0.3) is None
        finally:
            source.close()
    assert "retrying" in caplog.text and "127.0.0.1:1/s" in caplog.text and "rtspsrc" in caplog.text
    assert_clean(caplog.text)


def test_source_errors_hold_no_credentials():
    with pytest.raises(SourceError) as err:
        parse_uri("csi://admin:hunter2@x")
    assert "csi://***@x" in str(err.value)
    assert_clean(str(err.value))
    with pytest.raises(SourceError) as err:
        parse_uri("gst://rtspsrc location=rtsp://admin:p@ss@cam/s ! tee ! udpsink host=1.2.3.4")
    assert "tee" in str(err.value)
    assert_clean(str(err.value))


@pytest.mark.parametrize("doc", [
    {"source": {"uri": "rstp://admin:p@ss@10.0.0.5/stream"}},  # a mistyped scheme
    {"source": {"uri": "admin:hunter2@10.0.0.5/stream"}},  # a forgotten one
    {"mqtt": {"username": "cam", "password": 123456}},  # a bare number
    {"mqtt": {"username": "cam", "password": "hunter2\x00"}},
])
def test_config_errors_hold_no_secrets(doc):
    with pytest.raises(ConfigError) as err:
        config_from_dict(doc)
    assert_clean(str(err.value))


def test_cli_config_errors_on_stderr_hold_no_secrets(tmp_path):
    config = tmp_path / "cam.toml"
    config.write_text('[mqtt]\nusername = "cam"\npassword = 123456\n')
    runs = [["run", "--config", str(config)],
            ["run", "--source", "rstp://admin:p@ss@10.0.0.5/stream"],
            ["run", "--source", "gst://rtspsrc location=rtsp://admin:hunter2@c/s ! filesink location=/tmp/x"]]
    for args in runs:
        proc = subprocess.run([sys.executable, "-m", "edgeanon", *args], capture_output=True, text=True,
                              timeout=120, cwd=REPO)
        assert proc.returncode != 0, proc.stderr
        assert proc.stderr.strip() and "Traceback" not in proc.stderr, proc.stderr
        assert_clean(proc.stderr + proc.stdout)


def test_every_log_line_is_scrubbed_whoever_logs_it():
    """The CLI's filter: a third-party logger (paho, OpenCV wrappers) cannot leak a URI either."""
    stream = io.StringIO()
    logger = logging.getLogger("test_scrub.isolated")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        install_log_scrubber(logger)
        install_log_scrubber(logger)
        assert sum(isinstance(f, ScrubFilter) for f in handler.filters) == 1
        logger.warning("connecting to %s", "mqtt://cam:hunter2@broker")
        try:
            raise RuntimeError("cannot open rtsp://admin:p@ss@cam/s")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "mqtt://***@broker" in out and "rtsp://***@cam/s" in out and "Traceback" in out
    assert_clean(out)


def test_daemon_stderr_holds_no_credentials(tmp_path):
    """The real daemon on an RTSP camera that refuses: its own log lines and OpenCV/FFmpeg's native ones."""
    from devkit.broker import free_port

    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "edgeanon", "run", "--source",
                                 "rtsp://admin:p@ss@127.0.0.1:1/s", "--method", "blur", "--mqtt-host", "127.0.0.1",
                                 "--mqtt-port", str(free_port())], cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while "retrying" not in log.read_text(errors="replace") and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            stop_process(proc, 30)
    text = log.read_text(errors="replace")
    assert "rtsp://***@127.0.0.1:1/s" in text and "retrying" in text, text
    assert_clean(text)


# -- one URI parser; passwords with @ / # ? : (issue 26) --------------------------------------------

@pytest.mark.parametrize("uri, parts", [
    ("rtsp://admin:p@ss:w0rd@10.0.0.5:8554/live?x=1", ("admin", "p@ss:w0rd", "10.0.0.5", 8554, "/live?x=1")),
    ("rtsps://cam.lan/s", (None, None, "cam.lan", None, "/s")),
    ("rtsp://u:p%2Fss%23@[fe80::1]:554/s", ("u", "p%2Fss%23", "fe80::1", 554, "/s")),
    ("file:///a@b/clip.mp4", (None, None, "", None, "/a@b/clip.mp4")),
    ("mqtt://u@broker", ("u", None, "broker", None, "")),
])
def test_split_uri(uri, parts):
    u = split_uri(uri)
    assert (u.user, u.password, u.host, u.port, u.rest) == parts
    assert_clean(u.safe) and "p%2F" not in u.safe and "w0rd" not in u.safe


@pytest.mark.parametrize("uri, words", [
    ("rtsp://admin:Zq7/Xk9@cam/s", "percent-encode"),
    ("rtsp://admin:Zq7#Xk9@cam/s", "percent-encode"),
    ("rtsp://admin:Zq7?Xk9@cam/s", "percent-encode"),
    ("rtsp://admin:Zq7Xk9@cam:99999/s", "port must be a number"),
    ("rtsp://admin:Zq7Xk9@cam:abc/s", "port must be a number"),
    ("rtsp://admin:Zq7Xk9@[::1/s", "IPv6"),
    ("rtsp://admin:Zq7Xk9@/s", "no host"),
    ("admin:Zq7Xk9@cam/s", "expected SCHEME://"),  # the scheme forgotten
])
def test_split_uri_refuses_without_showing_the_password(uri, words):
    with pytest.raises(UriError) as err:
        split_uri(uri)
    assert words in str(err.value)
    assert "Zq7" not in str(err.value) and "Xk9" not in str(err.value), str(err.value)


def _passwords() -> list[str]:
    """Passwords made of three distinctive pieces joined by each pair of the characters that break URIs."""
    specials = "@/#?:"
    return [f"Qa1{a}Wb2{b}Ec3" for a in specials for b in specials]


PIECES = ("Qa1", "Wb2", "Ec3")


def test_no_password_with_special_characters_leaks_or_crashes_anywhere(tmp_path):
    """The daemon's parser, the scrubber and doctor's camera and network checks, for every pair of @ / # ? :
    in a password: a one-line refusal or a normal answer, never an exception, never a piece of it."""
    from edgeanon.commands import doctor

    paths = doctor.SystemPaths(units=(tmp_path / "none.service",), dev=tmp_path, argus_socket=tmp_path / "a",
                               tegra_release=tmp_path / "r")
    for password in _passwords():
        uri = f"rtsp://admin:{password}@127.0.0.1:1/stream"
        texts = [scrub(uri), scrub(f"opening {uri} failed")]
        try:
            parse_uri(uri)
            texts.append("parsed")
        except SourceError as exc:
            texts.append(str(exc))
            assert "percent-encode" in str(exc)
        texts.append(doctor.check_camera(uri, paths, timeout=1.0).detail)
        for text in texts:
            assert not any(piece in text for piece in PIECES), f"{password!r} leaked: {text}"


def test_doctor_and_the_daemon_with_such_passwords(tmp_path):
    """Before: doctor ended in a traceback 'Port could not be cast to integer value as ...' (part of the
    password), or printed 'rtsp://admin:12 unreachable'."""
    for password in ("Qa1/Wb2#Ec3", "Qa1@Wb2:Ec3?x", "Qa1:Wb2/Ec3"):
        config = tmp_path / "cam.toml"
        config.write_text(f'camera_id = "cam1"\n[source]\nuri = "rtsp://admin:{password}@127.0.0.1:1/s"\n'
                          f'[mqtt]\nhost = "127.0.0.1"\nport = 1\n')
        doc = subprocess.run([sys.executable, "-m", "edgeanon", "doctor", "--config", str(config), "--timeout", "1"],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        out = doc.stdout + doc.stderr
        assert doc.returncode == 1 and "Traceback" not in out, out
        assert "[FAIL] camera" in out and not any(piece in out for piece in PIECES), out
        run = subprocess.run([sys.executable, "-m", "edgeanon", "run", "--source", f"rtsp://admin:{password}@cam/s"],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
        assert "percent-encode" in run.stderr and not any(piece in run.stderr for piece in PIECES), run.stderr


def test_one_short_error_that_scrubs():
    """One function turns an exception into message text, and it scrubs (issue 27: there were three)."""
    exc = OSError("cannot open rtsp://admin:Qa1@Wb2@cam/s\nsecond line")
    assert short_error(exc) == "OSError: cannot open rtsp://***@cam/s"
    copies = [str(p.relative_to(REPO)) for p in (REPO / "edgeanon").rglob("*.py") if "def _short(" in p.read_text()]
    assert copies == []
