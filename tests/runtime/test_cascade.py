"""The cascade on the device: the escalation rule, the local teacher within the latency budget, remote
escalations answered by `edgekit escalations serve`, through a real mosquitto and real onnxruntime.

Cascade bundles are built by hand from the 3-class fixture: its student bundle, plus the same run's teacher
exported as an ordinary bundle (its ONNX and golden pairs copied in as the cascade's teacher), re-hashed and
re-signed. The escalation threshold is the 20 % quantile of the student's max probability on the replayed
rows, and "rotor" is a severe class, so roughly a quarter of the windows escalate.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle.manifest import Cascade, Manifest, Variant
from edgekit.errors import BundleError
from edgekit.profiles import Latency, TargetProfile
from edgekit.runtime.cascade import Rule, TeacherClock, cascade_mode
from edgekit.runtime.daemon import Daemon, DaemonConfig
from edgekit.runtime.engine import Engine
from edgekit.runtime.mqtt import ClientOptions
from edgekit.runtime.payloads import encode_reading
from edgekit.runtime.stats import prometheus_text

T0 = 1_700_000_000.0
SEVERE = "rotor"
SEVERE_MIN = 0.5


def softmax(out: np.ndarray) -> np.ndarray:
    e = np.exp(out - out.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def teacher_bundle(tmp_path_factory, kclass_bundle, keypair) -> Path:
    """The 3-class run's teacher exported as an ordinary signed bundle (what `escalations serve` loads)."""
    from edgekit.export.pipeline import ExportOptions, export_run

    run = Path(kclass_bundle).parent / "run"
    out = tmp_path_factory.mktemp("teacher") / "bundle"
    return export_run(
        run, "x86-gateway", out, key=keypair[0], options=ExportOptions(model="teacher", latency_runs=20)
    )


@pytest.fixture(scope="module")
def rows(kclass_bundle) -> np.ndarray:
    """Real held-out rows of the 3-class run ([N, 3] raw readings, window 1)."""
    with np.load(Path(kclass_bundle).parent / "run" / "windows.npz") as w:
        return w["test_x"][:160, 0, :].astype(np.float32)


@pytest.fixture(scope="module")
def rule_threshold(kclass_bundle, rows) -> float:
    e = Engine(kclass_bundle)
    return float(np.quantile(softmax(e.infer(e.preprocess(rows[:, None, :]))).max(axis=1), 0.2))


def cascade_bundle(src, teacher, dst, key, resign, mode: str, threshold: float) -> Path:
    """A copy of `src` with a cascade rule (and, for local, `teacher`'s model and golden pairs), re-signed."""
    shutil.copytree(src, dst)
    t = Manifest.load(teacher)
    variant = None
    if mode == "local":
        shutil.copy(Path(teacher) / t.model_file, dst / "teacher.onnx")
        shutil.copy(Path(teacher) / t.golden.file, dst / "teacher_golden.npz")
        golden = replace(t.golden, file="teacher_golden.npz")
        variant = Variant("teacher", "fp32", "teacher.onnx", golden, t.threshold)
    rule = Cascade(mode, "max_prob", threshold, [SEVERE], SEVERE_MIN, variant, {"escalation_rate": 0.25})
    resign(dst, key, cascade=rule)
    return dst


@pytest.fixture
def make(kclass_bundle, teacher_bundle, keypair, resign, tmp_path, rule_threshold):
    """make(mode, name="b") -> a fresh cascade bundle of the 3-class student, signed with `keypair`."""
    return lambda mode, name="b": cascade_bundle(
        kclass_bundle, teacher_bundle, tmp_path / name, keypair[0], resign, mode, rule_threshold
    )


def config(broker, bundle: Path, **kw: object) -> DaemonConfig:
    """A DaemonConfig for device dev1 on the test broker."""
    return DaemonConfig(bundle=str(bundle), client=ClientOptions(broker.url), device="dev1", **kw)  # type: ignore[arg-type]


def expected(bundle: Path, rows: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(escalate mask, student max probability) computed here from the student's raw logits."""
    e = Engine(bundle)
    probs = softmax(e.infer(e.preprocess(rows[:, None, :])))
    k = e.manifest.labels.index(SEVERE)
    esc = (probs.max(axis=1) < threshold) | (probs.argmax(axis=1) == k) | (probs[:, k] >= SEVERE_MIN)
    return esc, probs.max(axis=1)


def send_rows(pub, device: str, rows: np.ndarray) -> list[str]:
    ts = T0 + np.arange(len(rows)) * 0.01
    for i in range(len(rows)):
        pub.send(f"edgekit/{device}/sensors/pump", encode_reading(ts[i], rows[i]))
    pub.flush()
    return [f"pump@{t!r}" for t in ts.tolist()]


# -- the rule and the budget clock, on their own ---------------------------------------------------------


def test_rule_escalates_unsure_severe_and_near_severe_windows():
    rule = Rule(Cascade("remote", "max_prob", 0.6, ["c"], 0.3), ["a", "b", "c"], softmax_output=True)
    probs = np.array(
        [
            [0.9, 0.05, 0.05],  # sure, not severe: stays
            [0.5, 0.45, 0.05],  # unsure: escalates
            [0.1, 0.1, 0.8],  # top class severe: escalates
            [0.65, 0.0, 0.35],  # sure, but P(severe) >= 0.3: escalates
        ]
    )
    esc, conf = rule.apply(probs, probs[:, 2], 0.5)
    assert esc.tolist() == [False, True, True, True]
    assert np.allclose(conf, probs.max(axis=1))
    scores = np.array([0.5, 0.9, 0.05])
    label_free = Rule(Cascade("remote", "score_distance", 0.2), ["normal", "anomaly"], softmax_output=False)
    assert label_free.apply(None, scores, 0.5)[0].tolist() == [True, False, False]
    with pytest.raises(BundleError, match="not labels"):
        Rule(Cascade(severe_classes=["nope"]), ["a", "b"], softmax_output=True)
    with pytest.raises(BundleError, match="softmax"):
        Rule(Cascade(measure="margin"), ["a", "b"], softmax_output=False)


def test_teacher_clock_follows_load_and_relaxes_when_idle():
    clock = TeacherClock(fixed_ms=1.0, per_window_ms=0.5, now=0.0)
    assert clock.predict(4, 0.0) == pytest.approx(3.0)
    clock.observe(4, 30.0, now=1.0)  # 10x slower than measured at load: the estimate rises
    assert clock.predict(4, 1.0) == pytest.approx(0.8 * 3.0 + 0.2 * 30.0)
    later = clock.predict(4, 1.0 + 60.0)  # a minute without calls: back near the load-time figure
    assert 3.0 <= later < 3.2


def test_cascade_setting_resolution(kclass_bundle):
    m = Manifest.load(kclass_bundle)
    assert cascade_mode("bundle", m) == cascade_mode(None, m) == cascade_mode("off", m) == "off"
    with pytest.raises(BundleError, match="no cascade rule"):
        cascade_mode("remote", m)
    m.cascade = Cascade("remote")
    assert cascade_mode("bundle", m) == cascade_mode("remote", m) == "remote"
    assert cascade_mode("off", m) == "off"
    with pytest.raises(BundleError, match="no teacher model"):
        cascade_mode("local", m)


# -- through the daemon and a real broker ----------------------------------------------------------------


def test_local_cascade_answers_escalated_windows_with_the_teacher(
    rt, broker, mqtt_io, kclass_bundle, teacher_bundle, keypair, rows, rule_threshold, make
):
    bundle = make("local")
    esc, maxp = expected(bundle, rows, rule_threshold)
    assert 0 < esc.sum() < len(rows)
    teacher = Engine(teacher_bundle)
    t_scores = teacher.score(rows[:, None, :])
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/scores", "edgekit/dev1/escalations"])
    cfg = config(broker, bundle, pubkey=str(keypair[1]), publish_scores=True)
    with rt.running(cfg) as d:
        ids = send_rows(publish(), "dev1", rows)
        assert rt.wait_until(lambda: len(out.on("scores")) >= len(rows), 30)
        snap = d.snapshot()
        metrics = prometheus_text(snap, "dev1")
    reports = {r["id"]: r for r in out.json("scores")}
    assert set(reports) == set(ids)
    student = Engine(kclass_bundle).score(rows[:, None, :])
    for i, rid in enumerate(ids):
        r = reports[rid]
        assert r["confidence"] == pytest.approx(maxp[i], abs=1e-5)
        if esc[i]:
            assert r["answered_by"] == "teacher"
            assert r["score"] == pytest.approx(t_scores[i], abs=1e-5)
            assert r["threshold"] == teacher.threshold
        else:
            assert r["answered_by"] == "student"
            assert r["score"] == pytest.approx(student[i], abs=1e-5)
    assert out.on("escalations") == []  # the teacher fit the budget: nothing went remote
    c = snap["cascade"]
    assert c["mode"] == "local" and c["escalated"] == c["teacher_windows"] == int(esc.sum())
    assert c["remote_escalations"] == c["cascade_fallback_remote"] == 0
    assert c["escalation_rate"] == pytest.approx(esc.mean()) and c["teacher_latency_ms"] > 0
    assert f'edgekit_cascade_escalated{{device="dev1"}} {float(esc.sum())}' in metrics
    assert 'edgekit_cascade_teacher_latency_ms{device="dev1"}' in metrics


def test_teacher_too_slow_for_the_budget_escalates_remotely_and_is_counted(
    rt, broker, mqtt_io, rows, rule_threshold, make
):
    bundle = make("local")
    esc, _ = expected(bundle, rows, rule_threshold)
    tiny = TargetProfile(name="tiny-budget", latency=Latency(budget_ms=1e-6))  # no teacher call fits
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/scores", "edgekit/dev1/escalations"])
    cfg = config(broker, bundle, publish_scores=True)
    with rt.running(cfg, tiny) as d:
        ids = send_rows(publish(), "dev1", rows)
        assert rt.wait_until(lambda: len(out.on("escalations")) >= int(esc.sum()), 30)
        assert rt.wait_until(lambda: len(out.on("scores")) >= len(rows), 30)
        c = d.snapshot()["cascade"]
    assert c["escalated"] == c["cascade_fallback_remote"] == c["remote_escalations"] == int(esc.sum())
    assert c["teacher_windows"] == 0
    assert {r["answered_by"] for r in out.json("scores")} == {"student"}
    escalated = out.json("escalations")
    assert sorted(e["id"] for e in escalated) == sorted(np.array(ids)[esc].tolist())
    e = escalated[0]
    i = ids.index(e["id"])
    assert e["device"] == "dev1" and e["stream"] == "pump" and e["channels"] == ["a", "b", "c"]
    assert np.allclose(e["readings"], rows[i : i + 1], atol=1e-6)
    assert set(e["student"]) >= {"score", "label", "anomaly", "confidence", "class", "probability"}


def test_remote_cascade_consumer_sees_the_teachers_report(
    rt, broker, mqtt_io, kclass_bundle, teacher_bundle, keypair, tmp_path, rows, rule_threshold, make
):
    """Real `edgekit serve` and `edgekit escalations serve` processes on one broker."""
    import subprocess
    import sys

    from edgekit.bench.rig import DaemonProcess

    bundle = make("remote")
    esc, _ = expected(bundle, rows, rule_threshold)
    t_scores = Engine(teacher_bundle).score(rows[:, None, :])
    student = Engine(kclass_bundle).score(rows[:, None, :])
    log = tmp_path / "service.log"
    cmd = [sys.executable, "-m", "edgekit", "escalations", "serve", "--bundle", str(teacher_bundle)]
    cmd += ["--broker", broker.url, "--pubkey", str(keypair[1])]
    with open(log, "wb") as fh:
        service = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    try:
        assert rt.wait_until(lambda: "subscribed to edgekit/+/escalations" in log.read_text(), 30), (
            log.read_text()
        )
        listen, publish = mqtt_io
        out = listen(["edgekit/dev1/scores", "edgekit/dev1/escalations/#"])
        args = ["--pubkey", str(keypair[1]), "--publish-scores"]
        with DaemonProcess(bundle, broker.url, "dev1", args) as daemon:
            ids = send_rows(publish(), "dev1", rows)
            n_esc = int(esc.sum())
            assert rt.wait_until(lambda: len(out.on("scores")) >= len(rows) + n_esc, 30), daemon.log
        assert daemon.returncode == 0
    finally:
        service.terminate()
        assert service.wait(15) == 0
    assert '"malformed": 0, "wrong_shape": 0, "inference_failed": 0' in log.read_text()  # nothing refused
    assert len(out.on("escalations")) == len(out.on("escalations/answers")) == n_esc
    latest: dict[str, dict] = {}
    for r in out.json("scores"):  # a consumer keeps the latest report per window id
        latest[r["id"]] = r
    for i, rid in enumerate(ids):
        r = latest[rid]
        if esc[i]:
            assert r["answered_by"] == "teacher" and r["device"] == "dev1"
            assert r["score"] == pytest.approx(t_scores[i], abs=1e-5)
            assert r["model_id"] == Manifest.load(teacher_bundle).model_id
            assert r["student"]["score"] == pytest.approx(student[i], abs=1e-5)  # the student's, echoed
        else:
            assert r["answered_by"] == "student"


def test_malformed_answers_and_escalations_are_counted_never_fatal(
    rt, broker, mqtt_io, teacher_bundle, rows, make
):
    import threading

    from edgekit.runtime.teacher_service import EscalationService, EscalationServiceConfig

    bundle = make("remote")
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/escalations/answers", "edgekit/dev1/errors"])
    service = EscalationService(EscalationServiceConfig(str(teacher_bundle), ClientOptions(broker.url)))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    assert service.subscribed.wait(10)
    pub = publish()
    good = {
        "device": "dev1",
        "stream": "s",
        "id": "s@1.0",
        "channels": ["a", "b", "c"],
        "readings": [[0, 0, 0]],
    }
    bad_escalations = [
        b"not json",
        b"[1, 2]",
        json.dumps({**good, "device": "other"}),  # names another device than its topic
        json.dumps({**good, "readings": [[0, 0]]}),  # wrong shape
        json.dumps({**good, "channels": ["x", "y", "z"]}),  # other channels
        json.dumps({**good, "readings": [["a", None, 1]]}),
        json.dumps({**good, "stream": 7}),
    ]
    for body in bad_escalations:
        pub.send("edgekit/dev1/escalations", body)
    pub.send("edgekit/dev1/escalations", json.dumps(good))
    pub.flush()
    assert rt.wait_until(lambda: len(out.on("answers")) == 1, 10)
    cs = service.counters
    assert cs.escalations == len(bad_escalations) + 1 and cs.answers == 1
    assert cs.malformed + cs.wrong_shape == len(bad_escalations) and cs.wrong_shape == 2
    service.stop()
    thread.join(10)

    cfg = config(broker, bundle)
    with rt.running(cfg) as d:
        answer = {"device": "dev1", "stream": "s", "id": "x", "label": "ok", "score": 0.1, "anomaly": False}
        bad_answers = [
            b"\xff",
            b"{",
            json.dumps({**answer, "answered_by": "student"}),
            json.dumps({**answer, "answered_by": "teacher", "device": "dev2"}),
            json.dumps({**answer, "answered_by": "teacher", "score": "high"}),
            json.dumps({**answer, "answered_by": "teacher", "anomaly": 1}),
        ]
        for body in bad_answers:
            pub.send("edgekit/dev1/escalations/answers", body)
        pub.flush()
        assert rt.wait_until(lambda: d.counters.errors.get("bad_answer", 0) == len(bad_answers), 10)
        send_rows(pub, "dev1", rows[:20])  # still scoring
        assert rt.wait_until(lambda: d.counters.windows == 20, 10)
    assert d.cascade.counters.teacher_answers == 0
    assert any(e["kind"] == "bad_answer" for e in out.json("errors"))


def test_cascade_off_and_plain_bundles_report_as_before(rt, broker, mqtt_io, kclass_bundle, rows, make):
    bundle = make("local")
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/scores", "edgekit/dev1/escalations"])
    cfg = config(broker, bundle, publish_scores=True, cascade="off")
    with rt.running(cfg) as d:
        send_rows(publish(), "dev1", rows[:30])
        assert rt.wait_until(lambda: len(out.on("scores")) >= 30, 20)
        assert d.snapshot()["cascade"]["mode"] == "off"
    assert all("answered_by" not in r and "confidence" not in r for r in out.json("scores"))
    assert out.on("escalations") == []
    # a cascade asked for on a bundle that has none refuses to start, naming why
    with pytest.raises(BundleError, match="no cascade rule"):
        Daemon(DaemonConfig(bundle=str(kclass_bundle), device="dev1", cascade="local"))


def test_reload_loads_and_self_tests_the_teacher(
    rt, broker, mqtt_io, kclass_bundle, keypair, resign, rows, rule_threshold, make
):
    """Hot reload onto a cascade bundle brings its teacher in; a teacher failing its golden self-test is
    refused like a broken student (reload_failed, the running model kept), and refused at start."""
    good = make("local", "good")
    bad = make("local", "bad")
    with np.load(bad / "teacher_golden.npz") as g:
        arrays = {k: g[k] for k in g.files}
    arrays["outputs"] = arrays["outputs"] + 1.0  # signed, but the teacher no longer reproduces it
    np.savez(bad / "teacher_golden.npz", **arrays)
    resign(bad, keypair[0])
    with pytest.raises(BundleError, match="self-test failed"):
        Daemon(DaemonConfig(bundle=str(bad), device="dev1", pubkey=str(keypair[1])))
    esc, _ = expected(good, rows, rule_threshold)
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/scores", "edgekit/dev1/errors"])
    cfg = config(broker, kclass_bundle, pubkey=str(keypair[1]), publish_scores=True)
    with rt.running(cfg) as d:
        pub = publish()
        assert d.snapshot()["cascade"]["mode"] == "off"
        pub.send("edgekit/dev1/cmd", json.dumps({"cmd": "reload", "bundle": str(good)}))
        assert rt.wait_until(lambda: d.counters.reloads == 1, 30)
        assert d.snapshot()["cascade"]["mode"] == "local"
        send_rows(pub, "dev1", rows)
        assert rt.wait_until(lambda: len(out.on("scores")) >= len(rows), 30)
        pub.send("edgekit/dev1/cmd", json.dumps({"cmd": "reload", "bundle": str(bad)}))
        assert rt.wait_until(lambda: d.counters.errors.get("reload_failed", 0) == 1, 30)
        assert d.counters.reloads == 1 and d.snapshot()["cascade"]["mode"] == "local"
    by = [r["answered_by"] for r in out.json("scores")]
    assert by.count("teacher") == int(esc.sum()) and by.count("student") == len(rows) - int(esc.sum())
    assert any("self-test failed" in e["detail"] for e in out.json("errors") if e["kind"] == "reload_failed")


def test_teacher_that_cannot_run_one_window_is_refused_at_load(keypair, resign, make):
    """A teacher exported with a fixed batch passes its golden self-test (run at exactly that batch) but could
    not answer a flush's few escalations: refused when the daemon loads it, not when a window escalates."""
    import onnx

    bundle = make("local")
    with np.load(bundle / "teacher_golden.npz") as g:
        n = len(g["inputs"])
    assert n > 1
    model = onnx.load(bundle / "teacher.onnx")
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = n
    onnx.save(model, bundle / "teacher.onnx")
    resign(bundle, keypair[0])
    with pytest.raises(BundleError, match="cannot run 1 input"):
        Daemon(DaemonConfig(bundle=str(bundle), device="dev1", pubkey=str(keypair[1])))
