"""Payload formats: single reading, batch, SenML (RFC 8428), auto-detection and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.runtime.payloads import (
    MALFORMED,
    PAYLOAD_FORMATS,
    WRONG_CHANNELS,
    PayloadError,
    Schema,
    encode_batch,
    encode_reading,
    encode_senml,
    parse_payload,
)

CH = Schema(["f1", "f2", "f3"])
NOW = 1_700_000_000.0


def test_registry_holds_the_three_formats():
    assert list(PAYLOAD_FORMATS) == ["batch", "reading", "senml"]


def test_single_reading():
    rows = parse_payload(encode_reading(NOW + 1.5, [1, 2.5, -3]), CH, NOW)
    assert rows.ts.tolist() == [NOW + 1.5]
    assert rows.values.dtype == np.float32 and rows.values.tolist() == [[1.0, 2.5, -3.0]]


def test_single_reading_without_ts_uses_receive_time():
    rows = parse_payload(b'{"values": [1, 2, 3]}', CH, NOW)
    assert rows.ts.tolist() == [NOW]


def test_batch_round_trip():
    vals = np.arange(12, dtype=np.float32).reshape(4, 3)
    rows = parse_payload(encode_batch([NOW, NOW + 1, NOW + 2, NOW + 3], vals), CH, NOW)
    assert rows.ts.tolist() == [NOW, NOW + 1, NOW + 2, NOW + 3]
    np.testing.assert_array_equal(rows.values, vals)


def test_senml_base_name_base_time_and_grouping_by_time():
    pack = [
        {"bn": "urn:dev:ow:10e2073a01080063:", "bt": NOW, "n": "f1", "v": 1.0},
        {"n": "f2", "v": 2.0},
        {"n": "f3", "v": 3.0},
        {"n": "f3", "v": 30.0, "t": 1},
        {"n": "f1", "v": 10.0, "t": 1},
        {"n": "f2", "v": 20.0, "t": 1},
    ]
    rows = parse_payload(json.dumps(pack), CH, NOW + 99)
    assert rows.ts.tolist() == [NOW, NOW + 1]
    assert rows.values.tolist() == [[1, 2, 3], [10, 20, 30]]


def test_senml_relative_time_and_base_value():
    pack = [
        {"bv": 100.0, "n": "f1", "v": 1, "t": -2},
        {"n": "f2", "v": 2, "t": -2},
        {"n": "f3", "v": 3, "t": -2},
    ]
    rows = parse_payload(json.dumps(pack), CH, NOW)
    assert rows.ts.tolist() == [NOW - 2]  # RFC 8428: t < 2**28 is relative to now
    assert rows.values.tolist() == [[101, 102, 103]]


def test_senml_encoder_round_trip():
    rows = parse_payload(encode_senml(NOW, [4, 5, 6], CH.channels, base_name="dev1/"), CH, NOW)
    assert rows.ts.tolist() == [NOW] and rows.values.tolist() == [[4, 5, 6]]


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"{not json", MALFORMED),
        (b"\xff\xfe", MALFORMED),
        (b"42", MALFORMED),
        (b"[]", MALFORMED),
        (b'{"ts": "yesterday", "values": [1, 2, 3]}', MALFORMED),
        (b'{"ts": 1, "values": ["a", 2, 3]}', MALFORMED),
        (b'{"ts": 1, "values": [null, 2, 3]}', MALFORMED),
        (b'{"ts": 1, "values": [true, false, true]}', MALFORMED),
        (b'{"ts": 1, "values": [1, 2]}', WRONG_CHANNELS),
        (b'{"ts": 1, "values": [1, 2, 3, 4]}', WRONG_CHANNELS),
        (b'{"ts": [1, 2], "values": [[1, 2, 3]]}', MALFORMED),
        (b'{"ts": [1, 2], "values": [[1, 2, 3], [1, 2]]}', WRONG_CHANNELS),
        (b'{"ts": [], "values": []}', MALFORMED),
        (b'[{"n": "f1", "v": 1}, {"n": "f2", "v": 2}]', WRONG_CHANNELS),
        (b'[{"n": "f1", "v": 1}, {"n": "f2", "v": 2}, {"n": "zz", "v": 3}]', WRONG_CHANNELS),
        (b'[{"n": "f1", "vs": "on"}]', MALFORMED),
        (b'[{"n": "f1", "v": 1}, {"n": "f1", "v": 2}, {"n": "f2", "v": 2}, {"n": "f3", "v": 3}]', MALFORMED),
        (b"[" * 100_000, MALFORMED),
        (b'{"ts": 1' + b"0" * 400 + b', "values": [1, 2, 3]}', MALFORMED),
        (
            b'[{"bt": 1' + b"0" * 400 + b', "n": "f1", "v": 1}, {"n": "f2", "v": 1}, {"n": "f3", "v": 1}]',
            MALFORMED,
        ),
    ],
)
def test_refusals_name_their_kind(payload, kind):
    with pytest.raises(PayloadError) as err:
        parse_payload(payload, CH, NOW)
    assert err.value.kind == kind


def test_non_finite_values_are_left_for_the_stream_to_drop():
    rows = parse_payload(b'{"ts": [1, 2], "values": [[NaN, 1, 2], [1, Infinity, 1e39]]}', CH, NOW)
    assert np.isfinite(rows.values).all(axis=1).tolist() == [False, False]


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300),
    st.floats(allow_nan=True),
    st.text(max_size=5),
)
json_values = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.sampled_from(["ts", "values", "n", "v", "t", "bn", "bt", "x"]), kids, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64)))
def test_fuzz_parse_only_raises_payload_errors(raw):
    try:
        rows = parse_payload(raw, CH, NOW)
    except PayloadError as exc:
        assert exc.kind in (MALFORMED, WRONG_CHANNELS)
        return
    assert rows.values.shape == (len(rows.ts), 3) and rows.values.dtype == np.float32
