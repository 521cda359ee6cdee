"""Model bundles: manifest schema, signatures, verification and atomic install (device side)."""

from edgekit.bundle.manifest import MANIFEST, SIGNATURE, Manifest, hash_files, sha256_file
from edgekit.bundle.signing import keygen, sign_bundle, verify_bundle

__all__ = [
    "MANIFEST",
    "SIGNATURE",
    "Manifest",
    "hash_files",
    "keygen",
    "sha256_file",
    "sign_bundle",
    "verify_bundle",
]
