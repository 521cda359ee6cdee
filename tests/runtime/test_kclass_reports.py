"""A K-class bundle (fault types, one normal class) served by the daemon through a real mosquitto:
reports carry the class name and its probability; "anomaly" means "not the normal class"."""

from __future__ import annotations

import numpy as np

from edgekit.bundle.manifest import Manifest
from edgekit.runtime.daemon import DaemonConfig
from edgekit.runtime.engine import Engine
from edgekit.runtime.mqtt import ClientOptions
from edgekit.runtime.payloads import encode_reading

T0 = 1_700_000_000.0


def test_k_class_bundle_reports_class_names(rt, broker, mqtt_io, kclass_bundle, keypair):
    m = Manifest.load(kclass_bundle)
    assert m.labels == ["bearing", "ok", "rotor"] and m.output.normal_index == 1
    engine = Engine(kclass_bundle)
    with np.load(kclass_bundle / m.golden.file) as g:
        x = g["inputs"][:, 0, :]
    out_raw = engine.infer(engine.preprocess(x[:, None, :]))
    probs = np.exp(out_raw - out_raw.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    scores = engine.score(x[:, None, :])
    assert np.allclose(scores, 1.0 - probs[:, 1], atol=1e-6)  # anomaly = not "ok"
    ts = T0 + np.arange(len(x)) * 0.01
    hits = scores >= m.threshold
    assert 0 < hits.sum() < len(x)
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/anomalies"])
    cfg = DaemonConfig(
        bundle=str(kclass_bundle), client=ClientOptions(broker.url), device="dev1", pubkey=str(keypair[1])
    )
    with rt.running(cfg) as d:
        pub = publish()
        for i in range(len(x)):
            pub.send("edgekit/dev1/sensors/pump", encode_reading(ts[i], x[i]))
        assert rt.wait_until(lambda: len(out.on("anomalies")) >= int(hits.sum()), 30)
        assert rt.wait_until(lambda: d.pending_publishes() == 0)
    reports = {r["id"]: r for r in out.json("anomalies")}
    assert set(reports) == {f"pump@{t!r}" for t in ts[hits].tolist()}
    for i in np.flatnonzero(hits):
        r = reports[f"pump@{float(ts[i])!r}"]
        top = int(probs[i].argmax())
        assert r["anomaly"] is True and r["class"] == r["label"] == m.labels[top]
        assert abs(r["probability"] - probs[i, top]) < 1e-5
    assert any(r["class"] in ("bearing", "rotor") for r in reports.values())
