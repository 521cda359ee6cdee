"""Test traffic for `edgekit bench --e2e`: a paced publisher, a subscriber process that times reports, a bare relay.

The subscriber and the relay run in processes of their own (spawned), so that timing reports does not
compete with publishing for one interpreter lock.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import time
import uuid
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

from edgekit.bench.rig import READY_TIMEOUT_S, Recorder, mqtt_client, pin
from edgekit.errors import EdgekitError
from edgekit.runtime.mqtt import Topics


def _sent_ts(payload: bytes, key: str) -> list[tuple[float, float]]:
    """(sent time, the daemon's own latency_ms or NaN) of each report in a message (a list of them with
    `reports: batch`); the relay's messages carry no latency_ms."""
    body = json.loads(payload)
    out = []
    for report in body if isinstance(body, list) else [body]:
        ts = report[key]
        inner = report.get("latency_ms") if type(report) is dict else None
        out.append(
            (float(ts[-1] if isinstance(ts, list) else ts), float(inner) if inner is not None else math.nan)
        )
    return out


def _subscriber(
    host: str, port: int, nodelay: bool, topic: str, key: str, cpu: int | None, conn: Any
) -> None:
    """Records (arrival s, now - sent ts in ms, the daemon's latency_ms) of every message on `topic` until
    told to quit."""
    pin(0, cpu)
    arrival: list[float] = []
    lat: list[float] = []
    inner: list[float] = []

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        try:
            sent = _sent_ts(msg.payload, key)
        except (ValueError, KeyError, TypeError, IndexError):
            return
        for t, own in sent:
            arrival.append(now)
            lat.append((now - t) * 1000.0)
            inner.append(own)

    c = mqtt_client(host, port, f"edgekit-bench-sub-{uuid.uuid4().hex[:8]}", nodelay)
    c.on_message = on_message
    c.on_subscribe = lambda *_a: conn.send("ready")
    c.subscribe(topic, qos=1)
    c.loop_start()
    while (cmd := conn.recv()) != "quit":
        if cmd == "reset":
            arrival.clear()
            lat.clear()
            inner.clear()
            conn.send("ok")
        elif cmd == "collect":
            conn.send((len(lat), np.asarray(arrival), np.asarray(lat), np.asarray(inner)))
        elif cmd == "count":
            conn.send(len(lat))
    c.disconnect()
    c.loop_stop()


def _relay(host: str, port: int, nodelay: bool, sub: str, out: str, ready: str, cpu: int | None) -> None:
    """The baseline: subscribe and republish every message, no parsing, no model."""
    pin(0, cpu)
    c = mqtt_client(host, port, f"edgekit-bench-relay-{uuid.uuid4().hex[:8]}", nodelay)
    c.on_message = lambda cl, _u, m: cl.publish(out, m.payload, qos=1)
    c.on_subscribe = lambda cl, *_a: cl.publish(ready, b"1", qos=1)
    c.subscribe(sub, qos=1)
    c.loop_forever()


class Traffic:
    """Publisher and control client on the broker, the subscriber process, and the bare relay process."""

    def __init__(
        self,
        host: str,
        port: int,
        topics: Topics,
        rows: np.ndarray,
        batch: int = 1,
        qos: int = 0,
        nodelay: bool = True,
        cpus: tuple[int, int] | None = None,
        text: bool = False,
    ) -> None:
        self.host, self.port, self.topics = host, port, topics
        self.batch, self.qos, self.nodelay, self.cpus = batch, qos, nodelay, cpus
        # text: rows are strings, sent as {"text", "ts"} (the daemon echoes ts) on the text topics
        self.text = text
        self.streams = topics.text if text else topics.sensors
        self.vals = [json.dumps(str(r)) if text else json.dumps([float(v) for v in r]) for r in rows]
        self.pub = mqtt_client(host, port, f"edgekit-bench-pub-{uuid.uuid4().hex[:8]}", nodelay)
        self.pub.loop_start()
        self.ready_topic = f"{topics.cmd}/bench-relay-ready"
        self.ctl = Recorder(
            port,
            [topics.heartbeat, self.ready_topic],
            f"edgekit-bench-ctl-{uuid.uuid4().hex[:8]}",
            host=host,
        )
        self.last_ts = 0.0
        self.k = 0
        self.sub_proc: Any = None
        self.sub_conn: Any = None
        self.relay_proc: Any = None
        # processes whose CPU use each rate records (name -> pid); the subscriber, relay and this
        # publisher process are added by cpu_pids()
        self.watch: dict[str, int] = {}

    def start_subscriber(self, topic: str, key: str) -> None:
        """Time every message on `topic` by its `key` field (a unix ts, or a list whose last one counts)."""
        ctx = mp.get_context("spawn")
        self.sub_conn, child = ctx.Pipe()
        cpu = self.cpus[1] if self.cpus else None
        args = (self.host, self.port, self.nodelay, topic, key, cpu, child)
        self.sub_proc = ctx.Process(target=_subscriber, args=args, daemon=True)
        self.sub_proc.start()
        if not self.sub_conn.poll(READY_TIMEOUT_S):
            raise EdgekitError("the bench subscriber did not come up")
        self.sub_conn.recv()

    def stop_subscriber(self) -> None:
        if self.sub_proc is not None:
            self.sub_conn.send("quit")
            self.sub_proc.join(5)
            if self.sub_proc.is_alive():
                self.sub_proc.terminate()
            self.sub_proc = None

    def start_relay(self, out_topic: str) -> None:
        """The bare relay from the input topics to `out_topic`; returns once it is subscribed."""
        ctx = mp.get_context("spawn")
        cpu = self.cpus[0] if self.cpus else None
        args = (
            self.host,
            self.port,
            self.nodelay,
            self.streams.filter,
            out_topic,
            self.ready_topic,
            cpu,
        )
        self.relay_proc = ctx.Process(target=_relay, args=args, daemon=True)
        n = len(self.ctl.messages)
        self.relay_proc.start()
        if (
            self.ctl.wait_for(
                lambda t, _p: t == self.ready_topic, READY_TIMEOUT_S, n, alive=self.relay_proc.is_alive
            )
            is None
        ):
            raise EdgekitError(f"the bare relay did not come up within {READY_TIMEOUT_S:g} s")

    def stop_relay(self) -> None:
        if self.relay_proc is not None:
            self.relay_proc.terminate()
            self.relay_proc.join(5)
            self.relay_proc = None

    def cpu_pids(self) -> dict[str, int]:
        """Every process of the measurement by role: publisher (this one), subscriber, relay and `watch`."""
        pids = {"publisher": os.getpid(), **self.watch}
        for name, proc in (("subscriber", self.sub_proc), ("relay", self.relay_proc)):
            if proc is not None and proc.pid is not None:
                pids[name] = proc.pid
        return pids

    def ask(self, cmd: str) -> Any:
        """Ask the subscriber process: reset | count | collect."""
        self.sub_conn.send(cmd)
        return self.sub_conn.recv()

    def counters(self) -> dict[str, Any]:
        """Ask the daemon for a heartbeat and return its counters."""
        n = len(self.ctl.messages)
        self.pub.publish(self.topics.cmd, json.dumps({"cmd": "heartbeat"}), qos=1)
        got = self.ctl.wait_for(lambda t, _p: t == self.topics.heartbeat, 10.0, n)
        if got is None:
            raise EdgekitError("no heartbeat from the daemon under test within 10 s")
        return json.loads(got[1])["counters"]

    def publish(self, rate: float, n_readings: int, streams: list[str]) -> tuple[int, int, float]:
        """Paced readings round-robin over `streams`; returns (readings, messages, achieved readings/s)."""
        batch = self.batch
        msgs = max(1, n_readings // batch)
        topics = [self.streams.topic(s) for s in streams]
        t0 = time.perf_counter()
        for i in range(msgs):
            delay = t0 + i * batch / rate - time.perf_counter()
            if delay > 0.0002:
                time.sleep(delay)
            ts = max(time.time(), self.last_ts + 1e-6)
            if self.text:
                body = '{"text": %s, "ts": %r}' % (self.vals[self.k % len(self.vals)], ts)  # noqa: UP031
            elif batch == 1:
                body = '{"ts": %r, "values": %s}' % (ts, self.vals[self.k % len(self.vals)])  # noqa: UP031
            else:
                tss = [ts + j * 1e-6 for j in range(batch)]
                ts = tss[-1]
                vals = ", ".join(self.vals[(self.k + j) % len(self.vals)] for j in range(batch))
                body = '{"ts": %s, "values": [%s]}' % (json.dumps(tss), vals)  # noqa: UP031
            self.last_ts = ts
            self.k += batch
            self.pub.publish(topics[i % len(topics)], body, qos=self.qos)
        elapsed = time.perf_counter() - t0
        return msgs * batch, msgs, msgs * batch / elapsed if elapsed > 0 else float("inf")

    def close(self) -> None:
        self.stop_subscriber()
        self.stop_relay()
        self.pub.disconnect()
        self.pub.loop_stop()
        self.ctl.close()
