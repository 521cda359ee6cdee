"""`edgekit serve` with a text bundle, through a real mosquitto: UTF-8 or JSON text in on
edgekit/<device>/text/<stream>, one classification report per message out; empty, oversized, non-UTF-8
and malformed messages counted and reported on the errors topic, and the daemon carries on."""

from __future__ import annotations

import json

import numpy as np

from edgekit.profiles import TargetProfile
from edgekit.runtime.daemon import DaemonConfig
from edgekit.runtime.mqtt import ClientOptions
from edgekit.runtime.text import TextEngine

TOPIC = "edgekit/dev1/text/notes"


def _cfg(bundle: object, url: str) -> DaemonConfig:
    return DaemonConfig(bundle=str(bundle), client=ClientOptions(url), device="dev1", error_interval_s=0)


def _profile(max_payload_bytes: int = 256, qos: int = 1) -> TargetProfile:
    p = TargetProfile(name="test")
    p.daemon.max_payload_bytes, p.daemon.qos = max_payload_bytes, qos
    return p


def test_text_is_classified_and_every_bad_message_is_counted(rt, broker, mqtt_io, text_bundle):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/classifications", "edgekit/dev1/errors"])
    good = ["can you write a binary search tree?", "I feel happy today"]
    with rt.running(_cfg(text_bundle, broker.url), _profile()) as d:
        pub = publish()
        pub.send(TOPIC, good[0].encode())  # plain UTF-8
        pub.send(TOPIC, json.dumps({"text": good[1], "id": "n-7", "ts": 1.5}))
        pub.send(TOPIC, b"")  # empty
        pub.send(TOPIC, json.dumps({"text": "   "}))  # empty text
        pub.send(TOPIC, b"x" * 300)  # over max_payload_bytes (256)
        pub.send(TOPIC, b"caf\xe9 \xff\xfe")  # Latin-1, not UTF-8
        pub.send(TOPIC, b'{"text": "unterminated')  # malformed JSON
        pub.send(TOPIC, json.dumps({"message": "no text field"}))  # JSON without "text"
        pub.send(TOPIC, json.dumps({"text": "half \ud800 a pair"}))  # a lone surrogate: no character
        pub.send(TOPIC, json.dumps({"text": "fine", "id": "\udfff"}))
        pub.send(TOPIC, json.dumps({"text": "last", "id": "end"}))
        assert rt.wait_until(lambda: any(r["id"] == "end" for r in out.json("classifications")))
        reports = out.json("classifications")
        errs = dict(d.counters.errors)
        assert rt.wait_until(lambda: len(out.json("errors")) == 8)
    assert [r["id"] for r in reports] == ["notes#1", "n-7", "end"]
    engine = TextEngine(text_bundle)
    expected = engine.classify([*good, "last"])
    for r, p in zip(reports, expected, strict=True):
        assert set(r) >= {"stream", "id", "label", "probs", "model_version", "latency_ms", "answered_by"}
        assert r["stream"] == "notes" and r["answered_by"] == "student"
        assert r["model_version"] == engine.manifest.model_version and r["latency_ms"] >= 0
        assert list(r["probs"]) == engine.labels and r["label"] == engine.labels[int(p.argmax())]
        np.testing.assert_allclose(list(r["probs"].values()), p, atol=1e-5)
    assert reports[1]["ts"] == 1.5 and "ts" not in reports[0]  # the sender's time is echoed when given
    assert (errs["empty"], errs["oversized"], errs["not_utf8"], errs["malformed"]) == (2, 1, 1, 4)
    assert errs.get("inference_failed", 0) == 0  # a bad message never takes its batch mates down with it
    kinds = sorted(e["kind"] for e in out.json("errors"))
    assert kinds == ["empty", "empty", *["malformed"] * 4, "not_utf8", "oversized"]
    assert d.counters.windows == 3 and d.counters.reports == 3 and d.counters.messages == 11


def test_a_burst_is_classified_in_micro_batches_like_one_by_one(rt, broker, mqtt_io, text_bundle):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/classifications"])
    engine = TextEngine(text_bundle)
    texts = [t + " " + "please " * (i % 9) for i, t in enumerate(engine.golden_texts() * 5)]
    with rt.running(_cfg(text_bundle, broker.url), _profile(max_payload_bytes=4096)):
        pub = publish()
        for i, t in enumerate(texts):
            pub.send(f"edgekit/dev1/text/s{i % 3}", json.dumps({"text": t, "id": str(i)}))
        assert rt.wait_until(lambda: len(out.json("classifications")) == len(texts), 20)
    got = {int(r["id"]): list(r["probs"].values()) for r in out.json("classifications")}
    single = np.concatenate([engine.classify([t]) for t in texts])
    np.testing.assert_allclose([got[i] for i in range(len(texts))], single, atol=1e-5)


def test_a_text_daemon_reloads_text_and_refuses_a_sensor_bundle(
    rt, broker, mqtt_io, text_bundle, sensor_bundle
):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/classifications"])
    with rt.running(_cfg(text_bundle, broker.url), _profile()) as d:
        d.request_reload()  # the --bundle path again: a text bundle replaces a text bundle
        assert rt.wait_until(lambda: d.counters.reloads == 1)
        d.request_reload(str(sensor_bundle))
        assert rt.wait_until(lambda: d.counters.errors.get("reload_failed", 0) == 1)
        assert "cannot replace the running text one" in (d.last_reload_error or "")
        publish().send(TOPIC, b"still here?")
        assert rt.wait_until(lambda: len(out.json("classifications")) == 1)
