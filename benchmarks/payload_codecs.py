"""Cost per message of decoding sensor payloads: stdlib json vs orjson, and SenML as CBOR (RFC 8428 §6).

    .venv/bin/python benchmarks/payload_codecs.py [--channels 9] [--n 20000]

For each payload form (single reading, 100-reading batch, SenML pack of one reading) it times, per message:
the decode alone and `parse_payload` (decode + format detection + rows), with edgekit.runtime.codec set to
the stdlib and to orjson. SenML-in-CBOR is measured as what a CBOR input format would cost: cbor2.loads
of the same pack (integer keys per RFC 8428 §6: bn -2, bt -3, n 0, v 2) plus the same SenML row building;
run it with cbor2 importable (`pip install cbor2`), else that row is skipped. Prints a table; writes
nothing. CBOR is worth adding as an input format only if its row beats orjson's SenML JSON row.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from edgekit.runtime import codec
from edgekit.runtime.payloads import Schema, SenML, encode_batch, encode_reading, encode_senml, parse_payload

# RFC 8428 section 6: CBOR labels for the SenML fields used here
_CBOR_LABELS = {"bn": -2, "bt": -3, "n": 0, "v": 2}
_LABEL_NAMES = {v: k for k, v in _CBOR_LABELS.items()}


def per_message_us(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(3):  # best of three: the machine is shared
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t)
    return best / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--channels", type=int, default=9)
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args()
    names = [f"f{i + 1}" for i in range(args.channels)]
    schema = Schema(names)
    now = 1_700_000_100.0
    row = [float(i) * 1.5 - 3.0 for i in range(args.channels)]
    payloads = {
        "single reading": encode_reading(1_700_000_000.25, row),
        "batch of 100": encode_batch([1_700_000_000.0 + i * 0.01 for i in range(100)], [row] * 100),
        "SenML, 1 reading": encode_senml(1_700_000_000.25, row, names, base_name="dev:"),
    }
    print(f"load average {os.getloadavg()[0]:.2f}; {args.channels} channels; µs per message, best of 3")
    print("| payload | bytes | codec | decode µs | parse_payload µs |")
    print("|---|---:|---|---:|---:|")
    for label, raw in payloads.items():
        for name in ("stdlib", "orjson"):
            if codec.use(name) != name:
                continue
            dec = per_message_us(lambda raw=raw: codec.loads(raw), args.n)
            full = per_message_us(lambda raw=raw: parse_payload(raw, schema, now), args.n)
            print(f"| {label} | {len(raw)} | {name} | {dec:.2f} | {full:.2f} |")
    try:
        import cbor2
    except ImportError:
        print("(cbor2 not installed: SenML-CBOR row skipped)")
        return
    pack = codec.loads(payloads["SenML, 1 reading"])
    raw = cbor2.dumps([{_CBOR_LABELS[k]: v for k, v in rec.items()} for rec in pack])
    senml = SenML()

    def cbor_parse() -> object:
        recs = [{_LABEL_NAMES.get(k, k): v for k, v in rec.items()} for rec in cbor2.loads(raw)]
        return senml.parse(recs, schema, now)

    dec = per_message_us(lambda: cbor2.loads(raw), args.n)
    full = per_message_us(cbor_parse, args.n)
    print(f"| SenML-CBOR, 1 reading | {len(raw)} | cbor2 (C) | {dec:.2f} | {full:.2f} |")


if __name__ == "__main__":
    main()
