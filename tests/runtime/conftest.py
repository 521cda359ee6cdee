"""Fixtures for the daemon tests: real Shuttle rows, a windowed bundle, MQTT listeners/publishers and a
daemon running in a thread against the real broker fixture.

pytest runs with --import-mode=importlib, so test modules cannot import this file: the helpers reach
them through the `rt` fixture.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from edgekit.bench.rig import Recorder as Listener
from edgekit.bench.rig import mqtt_client  # a real MQTT subscriber recording every message
from edgekit.bundle.manifest import Manifest
from edgekit.bundle.signing import sign_bundle
from edgekit.runtime.daemon import Daemon, DaemonConfig


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


class Publisher:
    def __init__(self, port: int, protocol: int = mqtt.MQTTv5) -> None:
        self.client = mqtt_client("127.0.0.1", port, protocol=protocol, max_inflight=1000)
        self.client.loop_start()
        self.infos: list[mqtt.MQTTMessageInfo] = []

    def send(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.infos.append(self.client.publish(topic, payload, qos=qos))

    def flush(self, timeout: float = 10.0) -> None:
        assert wait_until(lambda: all(i._published for i in self.infos), timeout), (
            "publishes not acknowledged"
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_io(broker) -> Iterator[tuple[Callable[..., Listener], Callable[..., Publisher]]]:
    """Factories for listeners and publishers on the test broker; all closed at teardown."""
    made: list[Listener | Publisher] = []

    def listener(topics: list[str], **kw: object) -> Listener:
        made.append(Listener(broker.port, topics, **kw))  # type: ignore[arg-type]
        return made[-1]  # type: ignore[return-value]

    def publisher(**kw: object) -> Publisher:
        made.append(Publisher(broker.port, **kw))  # type: ignore[arg-type]
        return made[-1]  # type: ignore[return-value]

    yield listener, publisher
    for m in made:
        with suppress(Exception):
            m.close()


@contextmanager
def running(cfg: DaemonConfig, profile: object = None, wait: bool = True) -> Iterator[Daemon]:
    """A Daemon running in a thread; stopped (and checked to have exited) afterwards."""
    cfg.handle_signals = False
    d = Daemon(cfg, profile)  # type: ignore[arg-type]
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(d.run()), daemon=True)
    t.start()
    try:
        if wait:
            assert d.subscribed.wait(10), "daemon did not subscribe"
        yield d
    finally:
        d.stop()
        t.join(15)
        assert not t.is_alive(), "daemon did not stop"
        assert result == [0]


def bundle_version(src: Path, dst: Path, version: str, key: Path | None) -> Path:
    """A copy of `src` with another model_version; signed with `key`, or left with the old signature."""
    shutil.copytree(src, dst)
    m = Manifest.load(dst)
    m.model_version = version
    m.save(dst)
    if key is not None:
        sign_bundle(dst, key)
    return dst


@pytest.fixture(scope="session")
def shuttle_rows(sensor_run) -> tuple[np.ndarray, np.ndarray]:
    """The held-out Shuttle test rows of the sensor run (raw, [N, 9]) and their labels."""
    with np.load(Path(sensor_run) / "windows.npz") as w:
        x, y = w["test_x"], w["test_y"]
    assert x.shape[1] == 1
    return x[:, 0, :].astype(np.float32), y


@pytest.fixture
def rt() -> SimpleNamespace:
    """Helpers for tests: rt.running(cfg), rt.wait_until(pred), rt.Listener, rt.Publisher,
    rt.bundle_version(src, dst, version, key)."""
    return SimpleNamespace(
        running=running,
        wait_until=wait_until,
        Listener=Listener,
        Publisher=Publisher,
        bundle_version=bundle_version,
    )
