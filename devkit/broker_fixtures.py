"""Pytest fixtures for a real mosquitto (tests/conftest.py loads them with `pytest_plugins`).

`mosquitto_broker` (plain, started) and `secure_broker` (TLS + ACL, started). Both skip when mosquitto or
openssl is missing.
"""

from __future__ import annotations

import shutil

import pytest

from devkit.broker import Broker, mosquitto_binary


def _require_tools(*tools: str) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (apt install mosquitto)")
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


@pytest.fixture
def mosquitto_broker(tmp_path_factory):
    """A started plain broker on loopback: anonymous clients allowed, no TLS."""
    _require_tools()
    with Broker(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture
def secure_broker(tmp_path_factory):
    """A started broker with the production TLS + ACL config; devices cam1, cam2; user viewer."""
    _require_tools("openssl", "mosquitto_passwd")
    with Broker(tmp_path_factory.mktemp("mosquitto-tls"), tls=True) as broker:
        yield broker
