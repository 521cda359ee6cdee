"""Unpacking a bundle tarball without trusting it: every header is checked before anything is written.

A gzip bomb (a few MB expanding to GBs), a flood of members, links, devices, absolute or `..` names are
refused from the tar headers alone, in one pass that stops at the first header over a limit, so the disk
never sees them. The signature is checked only after unpacking, so nothing here may rely on it.
"""

from __future__ import annotations

import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from edgekit.bundle.manifest import is_plain_name
from edgekit.errors import BundleError

MIB = 1 << 20


@dataclass(frozen=True)
class UnpackLimits:
    """Caps on what a bundle tarball may unpack to (a real bundle is a handful of files, MBs to ~100 MB)."""

    max_bytes: int = 512 * MIB
    max_members: int = 1000
    # kept free on the device's filesystem after unpacking, so an install never fills the disk
    reserve_bytes: int = 16 * MIB


def size_text(n: int) -> str:
    if n < MIB:
        return f"{n} bytes"
    return f"{n // MIB} MiB" if n % MIB == 0 else f"{n / MIB:.1f} MiB"


def _member_name(member: tarfile.TarInfo) -> str:
    name = member.name.rstrip("/")
    return name[2:] if name.startswith("./") else name  # `tar -C dir .` writes ./-prefixed names


def check_members(
    tar: tarfile.TarFile, where: Path, limits: UnpackLimits
) -> tuple[list[tarfile.TarInfo], int]:
    """Read the headers, refusing at the first one over a limit; returns (members, total unpacked bytes)."""
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:  # headers arrive in order: refusing here stops before the rest is decompressed
        members.append(member)
        name = _member_name(member)
        if len(members) > limits.max_members:
            raise BundleError(f"{where}: more than {limits.max_members} members; not a bundle (refused)")
        if not (member.isdir() or (member.isreg() and not member.issparse())):
            kind = "a link" if member.issym() or member.islnk() else "not a plain file or folder"
            raise BundleError(f"{where}: member {member.name!r} is {kind} (refused)")
        if name and not is_plain_name(name):
            raise BundleError(f"{where}: member {member.name!r} is not a plain relative path (refused)")
        total += member.size
        if total > limits.max_bytes:
            raise BundleError(
                f"{where}: unpacks to more than {size_text(limits.max_bytes)} "
                f"(member {member.name!r} alone is {size_text(member.size)}); refused before writing"
            )
    return members, total


def check_space(dest: Path, needed: int, limits: UnpackLimits, what: str) -> None:
    """Refuse before writing when `needed` bytes would leave less than the reserve free under `dest`."""
    free = shutil.disk_usage(dest).free
    if needed + limits.reserve_bytes > free:
        raise BundleError(
            f"{what}: needs {size_text(needed)} but {dest} has {size_text(free)} free "
            f"(keeping {size_text(limits.reserve_bytes)} spare); nothing was installed"
        )


def safe_extract(tar_path: Path, dest: Path, limits: UnpackLimits) -> None:
    """Unpack `tar_path` into `dest` after checking every header against `limits` and the free space."""
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            members, total = check_members(tar, tar_path, limits)
            dest.mkdir(parents=True, exist_ok=True)
            check_space(dest, total, limits, str(tar_path))
            # filter="data" re-checks paths and drops modes like setuid: a second line of defence where
            # this Python has it (3.12, and security releases 3.10.12/3.11.4 on)
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, members=members, **extra)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        # tarfile's "r:*" error lists every method it tried on separate lines: keep it to one line
        raise BundleError(
            f"{tar_path}: not a readable bundle tarball ({' '.join(str(exc).split())})"
        ) from None
