"""paho's MQTT 5 Properties, without rebuilding its tables for every packet.

paho-mqtt 2.x builds a fresh `Properties` for every PUBLISH it receives and every PUBACK of a QoS 1
report, and each one rebuilds two 28-entry tables through a `__setattr__` that strips spaces from names:
about 20 µs per message before any property is read, the largest single cost of a daemon message
(profile in benchmarks/e2e_latency.py). `FastProperties` shares those constant tables and answers the
common case (no properties at all) at once; anything else goes through paho's own code. `install()` makes
paho's packet decoding use it in this process (the daemon's and the supervisor's clients).
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as _client
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_TEMPLATE = Properties(PacketTypes.PUBLISH)  # names, types and the property table are the same for all
_COMPRESSED = tuple(name.replace(" ", "") for name in _TEMPLATE.names)


class FastProperties(Properties):
    def __init__(self, packetType: int) -> None:
        d = self.__dict__
        d["packetType"] = packetType
        d["types"] = _TEMPLATE.types
        d["names"] = _TEMPLATE.names
        d["properties"] = _TEMPLATE.properties

    def isEmpty(self) -> bool:
        d = self.__dict__
        return not any(c in d for c in _COMPRESSED)

    def clear(self) -> None:
        d = self.__dict__
        for c in _COMPRESSED:
            d.pop(c, None)

    def unpack(self, buffer: Any) -> tuple[Properties, int]:
        if len(buffer) and buffer[0] == 0:  # property length 0: the usual sensor message and PUBACK
            self.clear()
            return self, 1
        return super().unpack(buffer)


def install() -> bool:
    """Use FastProperties for the packets paho decodes in this process; False if paho's layout differs
    (paho-mqtt 2.0 decodes in client.py only; 2.1+ also in _packet.py)."""
    modules = [_client]
    try:
        import paho.mqtt._packet as _packet

        modules.append(_packet)
    except ImportError:
        pass
    if not all(hasattr(m, "Properties") for m in modules):
        return False
    for m in modules:
        m.Properties = FastProperties  # type: ignore[attr-defined]
    return True
