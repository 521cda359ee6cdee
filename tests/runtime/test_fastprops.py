"""runtime.fastprops.FastProperties decodes, encodes and clears MQTT 5 properties exactly as paho's own class
(and every daemon test against the real broker runs through it)."""

from __future__ import annotations

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgekit.runtime.fastprops import FastProperties


def _publish_props(cls: type[Properties]) -> Properties:
    p = cls(PacketTypes.PUBLISH)
    p.MessageExpiryInterval = 30
    p.ContentType = "application/json"
    p.UserProperty = ("a", "1")
    p.UserProperty = ("b", "2")
    p.PayloadFormatIndicator = 1
    return p


def _attrs(p: Properties) -> dict:
    return {k: v for k, v in vars(p).items() if k not in ("packetType", "types", "names", "properties")}


@pytest.mark.parametrize("packet", [PacketTypes.PUBLISH, PacketTypes.PUBACK, PacketTypes.CONNACK])
def test_empty_properties_decode_alike(packet):
    slow, n_slow = Properties(packet).unpack(b"\x00")
    fast, n_fast = FastProperties(packet).unpack(b"\x00")
    assert n_slow == n_fast == 1 and _attrs(slow) == _attrs(fast) == {}
    assert slow.isEmpty() and fast.isEmpty()
    assert slow.pack() == fast.pack() == b"\x00"


def test_set_properties_encode_and_decode_alike():
    wire = _publish_props(Properties).pack()
    assert _publish_props(FastProperties).pack() == wire
    slow, n_slow = Properties(PacketTypes.PUBLISH).unpack(wire)
    fast, n_fast = FastProperties(PacketTypes.PUBLISH).unpack(wire)
    assert (
        n_slow == n_fast
        and _attrs(slow) == _attrs(fast)
        and _attrs(fast)["UserProperty"] == [("a", "1"), ("b", "2")]
    )
    assert not fast.isEmpty()
    fast.clear()
    slow.clear()
    assert fast.isEmpty() and _attrs(fast) == _attrs(slow) == {}
    # a reused object decodes a new packet without keeping the old one's properties
    again, _ = fast.unpack(b"\x00")
    assert _attrs(again) == {}


def test_fast_properties_refuse_what_paho_refuses():
    for cls in (Properties, FastProperties):
        p = cls(PacketTypes.PUBACK)
        with pytest.raises(Exception, match="does not apply"):
            p.MessageExpiryInterval = 5
        with pytest.raises(Exception, match="must be one of"):
            p.NoSuchProperty = 1
