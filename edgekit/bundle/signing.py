"""Ed25519 keys and detached manifest signatures (`cryptography`).

The signature covers the manifest's exact bytes; the manifest holds the sha256 of every other file,
so one signature check plus the hash check covers the whole bundle.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgekit.bundle.manifest import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    SIGNATURE,
    Manifest,
    check_hashes,
    read_capped,
)
from edgekit.errors import BundleError

MAX_SIGNATURE_BYTES = 4096  # an Ed25519 signature is 64 bytes


def keygen(
    private_path: str | Path, public_path: str | Path | None = None, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair as PEM files (private key mode 0600)."""
    private_path = Path(private_path)
    public_path = Path(public_path) if public_path else private_path.with_suffix(".pub")
    for p in (private_path, public_path):
        if p.exists() and not overwrite:
            raise BundleError(f"{p} already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"{path}: not a readable PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: not a readable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path}: not an Ed25519 public key")
    return key


def sign_bundle(bundle_dir: str | Path, private_key: str | Path) -> Path:
    """Write manifest.sig, a detached signature over manifest.json's bytes."""
    bundle_dir = Path(bundle_dir)
    sig = load_private_key(private_key).sign((bundle_dir / MANIFEST).read_bytes())
    path = bundle_dir / SIGNATURE
    path.write_bytes(sig)
    return path


def verify_bundle(bundle_dir: str | Path, public_key: str | Path | None) -> Manifest:
    """Check the signature (when a public key is given), then every file's hash. Returns the manifest.

    The manifest is read once, size-capped, and the bytes whose signature was checked are the bytes parsed.
    Raises BundleError with the reason on any mismatch.
    """
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"{bundle_dir}: no such bundle directory")
    manifest_path = bundle_dir / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{bundle_dir}: no {MANIFEST} (not a bundle)")
    try:
        raw = read_capped(manifest_path, MAX_MANIFEST_BYTES)
        if public_key is not None:
            sig_path = bundle_dir / SIGNATURE
            if not sig_path.is_file():
                raise BundleError(f"{bundle_dir}: unsigned ({SIGNATURE} is missing)")
            signature = read_capped(sig_path, MAX_SIGNATURE_BYTES)
    except OSError as exc:
        raise BundleError(
            f"{bundle_dir}: cannot read the manifest or signature ({exc.strerror or exc})"
        ) from None
    if public_key is not None:
        try:
            load_public_key(public_key).verify(signature, raw)
        except InvalidSignature:
            raise BundleError(
                f"{bundle_dir}: signature does not match {MANIFEST} (tampered, or signed with another key)"
            ) from None
    manifest = Manifest.from_bytes(raw, str(manifest_path))
    try:
        check_hashes(bundle_dir, manifest)
    except OSError as exc:  # e.g. a file of the bundle this user may not read
        raise BundleError(
            f"{bundle_dir}: cannot read {exc.filename or 'a file'} ({exc.strerror or exc})"
        ) from None
    return manifest
