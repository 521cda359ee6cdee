"""Bundle-test helpers: private copies of the shared signed bundle, and a re-signed second release."""

from __future__ import annotations

import io
import shutil
import struct
import tarfile
import zlib
from pathlib import Path

import pytest


@pytest.fixture
def bundle_copy(sensor_bundle, tmp_path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(sensor_bundle, dst)
    return dst


@pytest.fixture
def second_release(sensor_bundle, tmp_path, keypair, resign) -> Path:
    dst = tmp_path / "bundle-v2"
    shutil.copytree(sensor_bundle, dst)
    resign(dst, keypair[0], model_version="1.0.1")
    return dst


def _make_tarball(bundle: Path, out: Path, extra: list[tuple[tarfile.TarInfo, bytes]] = ()) -> Path:
    """bundle folder -> out (.tar.gz) under the folder's name, plus hand-made extra members."""
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        tar.add(bundle, arcname=bundle.name)
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return out


def _write_gzip_bomb(bundle: Path, out: Path, zero_bytes: int) -> Path:
    """A valid .tar.gz: the bundle's files plus `pad.bin`, `zero_bytes` of zeros (2 GiB fits in ~2.1 MB).

    Raw deflate is reset by a full flush, so every further MiB of zeros compresses to the same bytes: the
    stream is written by repetition, with its own gzip header and CRC-32/size trailer (RFC 1952).
    """
    mib = 1 << 20
    assert zero_bytes % mib == 0
    head = io.BytesIO()
    with tarfile.open(fileobj=head, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(bundle, arcname=bundle.name)
        members = head.getvalue()  # before close() appends the end-of-archive blocks
    pad = tarfile.TarInfo(f"{bundle.name}/pad.bin")
    pad.size = zero_bytes
    prefix = members + pad.tobuf(tarfile.PAX_FORMAT)
    # the member's data, then the end-of-archive marker: two 512-byte zero blocks
    tail = bytes(1024)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(mib)
    first = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH)
    piece = co.compress(block) + co.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    with open(out, "wb") as fh:
        fh.write(
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        )  # gzip header: deflate, no name, max compression
        fh.write(first)
        for _ in range(zero_bytes // mib):
            fh.write(piece)
            crc = zlib.crc32(block, crc)
        fh.write(co.compress(tail) + co.flush())
        crc = zlib.crc32(tail, crc)
        fh.write(struct.pack("<II", crc, (len(prefix) + zero_bytes + len(tail)) & 0xFFFFFFFF))
    return out


@pytest.fixture(scope="session")
def gzip_bomb(sensor_bundle, tmp_path_factory) -> Path:
    """The issue's bomb: a ~2.1 MB .tar.gz of a real signed bundle plus 2 GiB of zeros."""
    return _write_gzip_bomb(sensor_bundle, tmp_path_factory.mktemp("bomb") / "bomb.tar.gz", 2 << 30)


@pytest.fixture
def make_tarball():
    """make_tarball(bundle_dir, out, extra=[(TarInfo, bytes)]) -> out: a .tar.gz as export writes it, plus extras."""
    return _make_tarball
