"""Shared fixtures: a real mosquitto on a free loopback port, and small real runs/bundles."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def broker():
    """A private mosquitto (TCP_NODELAY on), stopped after the test."""
    from edgekit.broker import Broker

    with Broker() as b:
        yield b
