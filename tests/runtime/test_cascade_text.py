"""The cascade on text bundles, through a real mosquitto: the same rule over each classified batch, the local
teacher answering the unsure messages, or the teacher service answering them remotely.

The teacher is a second copy of the fixture's model with its own golden pairs (what the mechanics need:
a separate model file, loaded and self-tested as the cascade's teacher, and answers that say who gave them).
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle.manifest import Cascade, Manifest, Variant
from edgekit.runtime.daemon import DaemonConfig
from edgekit.runtime.mqtt import ClientOptions
from edgekit.runtime.teacher_service import EscalationService, EscalationServiceConfig
from edgekit.runtime.text import TextEngine


@pytest.fixture(scope="module")
def texts(text_bundle) -> list[str]:
    return TextEngine(text_bundle).golden_texts()[:40]


def text_cascade_bundle(src: Path, dst: Path, key: Path, resign, mode: str, threshold: float) -> Path:
    shutil.copytree(src, dst)
    m = Manifest.load(dst)
    variant = None
    if mode == "local":
        shutil.copy(dst / m.model_file, dst / "teacher.onnx")
        shutil.copy(dst / m.golden.file, dst / "teacher_golden.npz")
        variant = Variant(
            "teacher", "fp32", "teacher.onnx", replace(m.golden, file="teacher_golden.npz"), 0.5
        )
    resign(dst, key, cascade=Cascade(mode, "max_prob", threshold, teacher=variant))
    return dst


def unsure(bundle: Path, texts: list[str]) -> tuple[np.ndarray, float, np.ndarray]:
    """(escalate mask, threshold at the 30 % quantile of max probability, max probability)."""
    maxp = TextEngine(bundle).classify(texts).max(axis=1)
    thr = float(np.quantile(maxp, 0.3))
    return maxp < thr, thr, maxp


def send(pub, texts: list[str]) -> None:
    for i, t in enumerate(texts):
        pub.send("edgekit/dev1/text/notes", json.dumps({"text": t, "id": f"m{i}"}))
    pub.flush()


def test_local_text_cascade_answers_unsure_messages_with_the_teacher(
    rt, broker, mqtt_io, text_bundle, keypair, resign, tmp_path, texts
):
    esc, thr, maxp = unsure(text_bundle, texts)
    bundle = text_cascade_bundle(text_bundle, tmp_path / "b", keypair[0], resign, "local", thr)
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/classifications", "edgekit/dev1/escalations"])
    cfg = DaemonConfig(
        bundle=str(bundle), client=ClientOptions(broker.url), device="dev1", pubkey=str(keypair[1])
    )
    with rt.running(cfg) as d:
        send(publish(), texts)
        assert rt.wait_until(lambda: len(out.on("classifications")) >= len(texts), 30)
        c = d.snapshot()["cascade"]
    reports = {r["id"]: r for r in out.json("classifications")}
    for i in range(len(texts)):
        r = reports[f"m{i}"]
        assert r["answered_by"] == ("teacher" if esc[i] else "student")
        assert r["confidence"] == pytest.approx(maxp[i], abs=1e-5)
    assert c["mode"] == "local" and c["escalated"] == c["teacher_windows"] == int(esc.sum()) > 0
    assert out.on("escalations") == []


def test_remote_text_cascade_the_consumer_sees_the_teachers_classification(
    rt, broker, mqtt_io, text_bundle, keypair, resign, tmp_path, texts
):
    esc, thr, _ = unsure(text_bundle, texts)
    bundle = text_cascade_bundle(text_bundle, tmp_path / "b", keypair[0], resign, "remote", thr)
    service = EscalationService(
        EscalationServiceConfig(
            str(text_bundle), ClientOptions(broker.url), devices="dev1", pubkey=str(keypair[1])
        )
    )
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        assert service.subscribed.wait(10)
        listen, publish = mqtt_io
        out = listen(["edgekit/dev1/classifications", "edgekit/dev1/escalations"])
        cfg = DaemonConfig(bundle=str(bundle), client=ClientOptions(broker.url), device="dev1")
        with rt.running(cfg) as d:
            send(publish(), texts)
            n = len(texts) + int(esc.sum())
            assert rt.wait_until(lambda: len(out.on("classifications")) >= n, 30)
            assert d.cascade.counters.teacher_answers == int(esc.sum())
    finally:
        service.stop()
        thread.join(10)
    escalated = out.json("escalations")
    assert sorted(e["id"] for e in escalated) == sorted(f"m{i}" for i in np.flatnonzero(esc))
    assert all(e["kind"] == "text" and e["text"] in texts for e in escalated)
    latest: dict[str, dict] = {}
    for r in out.json("classifications"):
        latest[r["id"]] = r
    for i in range(len(texts)):
        r = latest[f"m{i}"]
        assert r["answered_by"] == ("teacher" if esc[i] else "student")
        if esc[i]:
            assert r["student"]["confidence"] < thr and set(r["probs"]) == set(TextEngine(text_bundle).labels)


def test_a_text_teacher_refuses_a_lone_surrogate_and_answers_its_batch_mates(
    rt, broker, mqtt_io, text_bundle
):
    """JSON "\\ud800" decodes to a str tokenizers cannot take; it must not fail the teacher batch it joins."""
    service = EscalationService(EscalationServiceConfig(str(text_bundle), ClientOptions(broker.url)))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        assert service.subscribed.wait(10)
        listen, publish = mqtt_io
        out = listen(["edgekit/dev1/escalations/answers"])
        pub = publish()
        body = {"device": "dev1", "stream": "notes", "kind": "text"}
        pub.send("edgekit/dev1/escalations", json.dumps({**body, "id": "a", "text": "is the pump ok?"}))
        pub.send("edgekit/dev1/escalations", json.dumps({**body, "id": "bad", "text": "half \ud800 a pair"}))
        pub.send("edgekit/dev1/escalations", json.dumps({**body, "id": "b", "text": "I feel happy today"}))
        pub.flush()
        assert rt.wait_until(lambda: len(out.on("answers")) == 2, 10)
        cs = service.counters
        assert cs.escalations == 3 and cs.answers == 2 and cs.malformed == 1
        assert cs.inference_failed == 0
        assert sorted(a["id"] for a in out.json("answers")) == ["a", "b"]
    finally:
        service.stop()
        thread.join(10)
