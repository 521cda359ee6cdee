"""Per-stream ring buffers: windows identical to offline windowing, ordering, gaps, limits."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.data import SensorTable, make_windows
from edgekit.runtime.windows import DUPLICATE, GAP, OK, OUT_OF_ORDER, StreamTable, StreamWindow, WindowBatch


@pytest.mark.parametrize(("window", "hop"), [(1, 1), (5, 2), (8, 8), (4, 7), (32, 8)])
def test_windows_match_offline_make_windows(window, hop):
    rng = np.random.default_rng(window * 100 + hop)
    values = rng.normal(size=(103, 3)).astype(np.float32)
    expected = make_windows(SensorTable("synthetic", values, ["a", "b", "c"]), window, hop).x
    sw = StreamWindow("s", window, hop, 3)
    batch = WindowBatch(len(values), window, 3)
    for i, row in enumerate(values):
        assert sw.admit(float(i)) == OK
        if sw.push(float(i), row):
            batch.add(sw, float(i), 0.0)
    np.testing.assert_array_equal(batch.x[: len(batch)], expected)
    meta = [batch.window(i) for i in range(len(batch))]
    starts = [m.start_ts for m in meta]
    ends = [m.end_ts for m in meta]
    assert ends == [float(window - 1 + k * hop) for k in range(len(expected))]
    assert starts == [e - (window - 1) for e in ends]
    assert [m.seq for m in meta] == list(range(len(expected)))


def test_out_of_order_and_duplicates_are_refused_without_touching_the_buffer():
    sw = StreamWindow("s", 2, 1, 1)
    assert sw.admit(10.0) == OK
    sw.push(10.0, np.array([1.0]))
    assert sw.admit(10.0) == DUPLICATE
    assert sw.admit(9.0) == OUT_OF_ORDER
    assert sw.count == 1 and sw.last_ts == 10.0
    assert sw.admit(11.0) == OK


def test_gap_beyond_factor_times_median_period_resets_the_buffer():
    sw = StreamWindow("s", 4, 1, 1, gap_factor=10.0)
    t = 0.0
    for _ in range(20):
        t += 0.01
        assert sw.admit(t) == OK
        sw.push(t, np.array([t]))
    assert sw.period == pytest.approx(0.01)
    assert sw.admit(t + 0.05) == OK  # 5x the period: jitter, not a gap
    sw.push(t + 0.05, np.array([0.0]))
    assert sw.admit(t + 1.0) == GAP
    assert sw.count == 0
    assert not sw.push(t + 1.0, np.array([0.0]))  # the first reading of a new run


def test_gap_detection_off_with_factor_zero():
    sw = StreamWindow("s", 1, 1, 1, gap_factor=0.0)
    for t in [*np.arange(20) * 0.01, 1000.0]:
        assert sw.admit(float(t)) == OK


def test_stream_limit_bounds_memory():
    table = StreamTable(4, 1, 2, gap_factor=0.0, max_streams=3)
    assert all(table.get(f"s{i}") is not None for i in range(3))
    assert table.get("s3") is None
    assert table.get("s0") is not None


def test_reshape_keeps_compatible_buffers_and_resets_incompatible_ones():
    table = StreamTable(2, 1, 1, gap_factor=0.0, max_streams=8)
    sw = table.get("s")
    sw.admit(1.0)
    sw.push(1.0, np.array([1.0]))
    assert table.reshape(2, 2, 1) is False and table.get("s") is sw and sw.hop == 2
    assert table.reshape(3, 1, 1) is True
    fresh = table.get("s")
    assert fresh is not sw and fresh.count == 0 and fresh.last_ts == 1.0


def test_push_run_does_not_copy_every_window_of_a_big_payload() -> None:
    """A hop-1 window-256 model fed one 12,000-reading payload: the windows come back as a view (the
    scorer copies max_batch of them at a time), not 12,000 x 256 x 3 floats (35 MiB) at once."""
    import tracemalloc

    rows = np.random.default_rng(0).normal(size=(12000, 3)).astype(np.float32)
    ts = np.arange(12000, dtype=np.float64)
    sw = StreamWindow("s", 256, 1, 3)
    tracemalloc.start()
    try:
        ends, ending, starts = sw.push_run(ts, rows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(ends) == 12000 - 255 and peak < 4 * 2**20
    np.testing.assert_array_equal(ending[ends[-1]], rows[-256:])
    assert starts[0] == 0.0 and starts[-1] == ts[-256]
