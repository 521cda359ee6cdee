"""The drift monitor on its own: PSI values, binning against the bundle's reference, the sliding window, stuck
and out-of-range flags, rate limits, the stream cap, and the profile and manifest pieces it reads.

Readings are the real Shuttle test rows of `sensor_run`, against the reference `sensor_bundle` carries;
where a test needs a hand-made distribution it says so (synthetic).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgekit.bundle.manifest import ChannelReference, Histogram, Manifest, Reference
from edgekit.config import from_dict
from edgekit.errors import BundleError, ConfigError
from edgekit.profiles import Drift, TargetProfile
from edgekit.runtime.drift import EPS, POOLED, Bins, DriftMonitor, monitor_for, psi

SMALL = {"window_readings": 200, "evaluate_every": 50, "consecutive": 2, "alert_interval_s": 3600.0}


def monitor(ref: Reference, **over: object) -> tuple[DriftMonitor, list[dict]]:
    out: list[str] = []
    mon = DriftMonitor(ref, Drift(**{**SMALL, **over}), out.append)  # type: ignore[arg-type]
    return mon, out  # type: ignore[return-value]


def alerts(out: list[str], kind: str | None = None) -> list[dict]:
    return [a for a in map(json.loads, out) if kind is None or a["kind"] == kind]


def feed(mon: DriftMonitor, stream: str, rows: np.ndarray) -> None:
    for r in np.asarray(rows, np.float64):
        mon.observe(stream, r[None])


@pytest.fixture(scope="module")
def ref(sensor_bundle) -> Reference:
    r = Manifest.load(sensor_bundle).reference
    assert r is not None
    return r


def test_psi_known_values():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    # (0.6 - 0.5) ln(0.6/0.5) + (0.4 - 0.5) ln(0.4/0.5)
    assert psi([0.6, 0.4], [0.5, 0.5]) == pytest.approx(0.1 * math.log(1.2) + 0.1 * math.log(1.25))
    # an empty observed bin counts as EPS, not as impossible
    want = 0.5 * math.log(1 / 0.5) + (EPS - 0.5) * math.log(EPS / 0.5)
    assert psi([1.0, 0.0], [0.5, 0.5]) == pytest.approx(want)
    # uniform deciles vs everything in one decile: the textbook "severe shift"
    assert float(psi(np.eye(10)[0], np.full(10, 0.1))) > 2.0
    # several channels at once (last axis)
    assert psi(np.array([[0.5, 0.5], [0.6, 0.4]]), np.array([0.5, 0.5])).shape == (2,)


def test_bins_agree_with_searchsorted_on_ties_and_edges():
    """Synthetic edges of unequal counts (padding), values on the edges and between them."""
    hists = [Histogram([0.0, 1.0, 2.0], [0.25] * 4), Histogram([5.0], [0.5, 0.5])]
    bins = Bins(hists)
    vals = np.array([[-1.0, 4.0], [0.0, 5.0], [1.5, 6.0], [2.0, 5.0], [9.0, -9.0]])
    idx = bins.index(vals)
    for c, h in enumerate(hists):
        want = np.searchsorted(h.edges, vals[:, c], side="right") + c * bins.nbins
        assert idx[:, c].tolist() == want.tolist()
    assert bins.expected[1].tolist() == [0.5, 0.5, 0.0, 0.0]  # padded bins expect nothing


def test_clean_test_rows_keep_psi_low(ref, shuttle_rows):
    x, _ = shuttle_rows
    mon, out = monitor(ref)
    feed(mon, "s", x)
    s = mon.summary()
    assert s["evaluations"] == (len(x) - 200) // 50 + 1
    assert max(s["psi"].values()) < 0.25
    assert alerts(out, "drift") == [] and alerts(out, "stuck") == []


def test_window_slides_and_forgets(ref, shuttle_rows):
    """The window holds the last 200 readings: drift shows up, then leaves once clean rows fill it again."""
    x, _ = shuttle_rows
    shifted = x.astype(np.float64).copy()
    shifted[:, 0] += 3 * ref.channels[0].std
    mon, _out = monitor(ref, range_margin=100.0)
    feed(mon, "s", x[:200])
    w = mon.windows["s"]
    # one bin per channel per reading; evaluated at 200, then the oldest block made room for the next
    assert w.total().sum() == 150 * 9
    feed(mon, "s", shifted[200:400])
    assert mon.summary()["psi"]["f1"] > 1.0
    feed(mon, "s", x[400:600])
    assert mon.summary()["psi"]["f1"] < 0.25
    assert w.total().sum() == 150 * 9  # bounded: never more than one window


def test_offset_alerts_drift_after_consecutive_evaluations(ref, shuttle_rows):
    x, _ = shuttle_rows
    rows = x.astype(np.float64).copy()
    rows[:, 0] += 3 * ref.channels[0].std
    mon, out = monitor(ref, range_margin=100.0)  # range checks out of the way: drift only
    feed(mon, "s", rows[:249])  # evaluations at 200 (1st over) and 250 (2nd): not yet
    assert alerts(out, "drift") == []
    feed(mon, "s", rows[249:250])
    (a,) = alerts(out, "drift")
    assert (a["stream"], a["channel"], a["threshold"]) == ("s", "f1", 0.25) and a["value"] > 0.25


def test_stuck_needs_an_implausible_constant(ref, shuttle_rows):
    x, _ = shuttle_rows
    rows = x.astype(np.float64)[:200].copy()
    rows[:, 4] = rows[0, 4]
    mon, out = monitor(ref, range_margin=100.0)
    feed(mon, "s", rows)
    assert [(a["channel"], a["value"]) for a in alerts(out, "stuck")] == [("f5", float(rows[0, 4]))]
    # synthetic: a channel that is one value in 999 of 1000 training readings may sit there for a window
    loose = Reference([ChannelReference("a", 0.0, 1.0, 0.0, 0.03, Histogram([1.0], [0.999, 0.001]))])
    mon2, out2 = monitor(loose)
    feed(mon2, "s", np.zeros((200, 1)))
    assert alerts(out2, "stuck") == []


def test_out_of_range_alerts_once_per_interval(ref, shuttle_rows):
    x, _ = shuttle_rows
    c = ref.channels[2]
    bound = c.max + 0.1 * (c.max - c.min)
    row = x[0].astype(np.float64).copy()
    row[2] = bound + 1.0
    mon, out = monitor(ref)
    for _ in range(5):
        mon.observe("s", row[None])
    assert alerts(out) == []  # kept until the block (50 readings) is complete, or flush()
    mon.flush()
    (a,) = alerts(out)
    assert (a["kind"], a["channel"], a["value"], a["threshold"]) == ("out_of_range", "f3", bound + 1.0, bound)
    assert mon.summary()["suppressed"] == 4 and mon.summary()["alerts"]["out_of_range"] == 1
    mon.observe("s", row[None])
    mon.flush()  # taken in alone: suppressed as well
    assert mon.summary()["suppressed"] == 5 and len(alerts(out)) == 1
    mon.observe("other", row[None])  # the limit is per (kind, stream, channel)
    mon.flush()
    assert len(alerts(out)) == 2
    mon0, out0 = monitor(ref, alert_interval_s=0.0)
    for _ in range(3):
        mon0.observe("s", row[None])
        mon0.flush()
    assert len(alerts(out0)) == 3
    mon0.observe("s", np.repeat(row[None], 50, axis=0))  # a whole block: taken in at once, no flush()
    assert len(alerts(out0)) == 4
    mon0.observe("s", row[None])
    mon0.flush(max_age_s=3600)  # the daemon's housekeeping: only what has waited that long
    assert len(alerts(out0)) == 4
    mon0.flush(max_age_s=0)
    assert len(alerts(out0)) == 5
    # just inside the margin: no alert (batch form, the vectorised path)
    inside = np.repeat(x[:1].astype(np.float64), 3, axis=0)
    inside[:, 2] = bound - 0.5
    mon1, out1 = monitor(ref)
    mon1.observe("s", inside)
    assert alerts(out1) == []


def test_streams_beyond_the_cap_share_one_pooled_window(ref, shuttle_rows):
    x, _ = shuttle_rows
    mon, out = monitor(ref, max_streams=2, range_margin=100.0)
    for i in range(5):
        feed(mon, f"s{i}", x[:60])
    mon.flush()
    assert sorted(mon.windows) == [POOLED, "s0", "s1"]
    assert mon.windows[POOLED].total().sum() == 3 * 60 * 9
    mon.forget("s0")  # an evicted stream frees its slot
    feed(mon, "s9", x[:1])
    mon.flush()
    assert "s9" in mon.windows and "s0" not in mon.windows
    hot = x[:1].astype(np.float64).copy()
    hot[0, 2] = 1e6
    mon.observe("s3", hot)  # pooled: its alert times live in the pooled window, and go when it is forgotten
    mon.flush()
    assert ("out_of_range", "s3", "f3") in mon.windows[POOLED].alerted
    mon.forget("s3")
    assert not any(k[1] == "s3" for k in mon.windows[POOLED].alerted)
    out.clear()
    stuck = x[:200].astype(np.float64).copy()
    stuck[:, 4] = stuck[0, 4]
    mon2, out2 = monitor(ref, max_streams=0, range_margin=100.0)
    feed(mon2, "a", stuck)
    assert {a["stream"] for a in alerts(out2, "stuck")} == {POOLED}
    assert out == []


def test_batch_messages_count_every_reading(ref, shuttle_rows):
    """The single-reading path (plain Python) and the batch path (numpy) count, track and flag alike."""
    x, _ = shuttle_rows
    rows = x[:430].astype(np.float64).copy()
    rows[200:, 4] = rows[200, 4]  # f5 stuck from reading 200: held for 230 readings >= the window (200)
    one, out_one = monitor(ref, range_margin=100.0)
    many, out_many = monitor(ref, range_margin=100.0)
    feed(one, "s", rows)
    for i in range(0, 430, 10):
        many.observe("s", rows[i : i + 10])
    a, b = one.windows["s"], many.windows["s"]
    assert np.array_equal(a.total(), b.total())
    assert (a.since, a.last, a.seen) == (b.since, b.last, b.seen) and a.held(200) == [4]
    assert one.summary()["psi"] == pytest.approx(many.summary()["psi"])
    strip = lambda out: [{k: v for k, v in al.items() if k != "ts"} for al in alerts(out)]  # noqa: E731
    assert strip(out_one) == strip(out_many) and "stuck" in {al["kind"] for al in alerts(out_one)}


def test_score_drift_is_watched_per_device(ref):
    mon, out = monitor(ref)
    assert ref.score is not None
    lo = ref.score.edges[0]
    for _ in range(5):  # full window at 256 scores, 2nd evaluation at 320
        mon.observe_scores(np.full(64, lo / 2))  # every window in the lowest decile (synthetic scores)
    (a,) = alerts(out, "drift")
    assert (a["stream"], a["channel"]) == (POOLED, "score")
    assert mon.summary()["score_psi"] > 2.0
    one, out_one = monitor(ref)  # one window per flush: the scalar path, same result
    for _ in range(5 * 64):
        one.observe_scores(np.array([lo / 2]))
    assert [json.loads(x)["channel"] for x in out_one] == ["score"]
    assert one.summary()["score_psi"] == pytest.approx(mon.summary()["score_psi"])


def test_monitor_off_without_reference_or_when_disabled(sensor_bundle):
    m = Manifest.load(sensor_bundle)
    assert monitor_for(m, Drift(), print) is not None
    assert monitor_for(m, Drift(enabled=False), print) is None
    m.reference = None
    assert monitor_for(m, Drift(), print) is None


def test_profile_drift_section_is_checked():
    p = from_dict(TargetProfile, {"name": "t", "drift": {"window_readings": 500, "evaluate_every": 50}})
    assert p.drift.window_readings == 500 and p.drift.psi_threshold == 0.25
    with pytest.raises(ConfigError, match="window_readings"):
        from_dict(TargetProfile, {"name": "t", "drift": {"window_readings": 500, "evaluate_every": 30}})
    with pytest.raises(ConfigError, match="psi_threshold"):
        from_dict(TargetProfile, {"name": "t", "drift": {"psi_threshold": -1}})
    with pytest.raises(ConfigError, match="alerts"):
        from_dict(TargetProfile, {"name": "t", "mqtt": {"alerts": "edgekit/{stream}/alerts"}})


def test_manifest_reference_is_optional_and_checked(sensor_bundle):
    m = Manifest.load(sensor_bundle)
    raw = json.loads(m.to_json())
    assert "reference" in raw
    del raw["reference"]  # an older bundle
    old = Manifest.from_bytes(json.dumps(raw).encode(), "old")
    assert old.reference is None and "reference" not in json.loads(old.to_json())
    bad = json.loads(m.to_json())
    bad["reference"]["channels"][0]["bins"]["fractions"].append(0.0)
    with pytest.raises(BundleError, match="fractions"):
        Manifest.from_bytes(json.dumps(bad).encode(), "bad")
    renamed = json.loads(m.to_json())
    renamed["reference"]["channels"][0]["name"] = "nope"
    with pytest.raises(BundleError, match=r"window\.channels"):
        Manifest.from_bytes(json.dumps(renamed).encode(), "renamed")
