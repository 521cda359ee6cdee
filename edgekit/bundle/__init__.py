"""Model bundles as data: manifest schema, file hashes and Ed25519 signatures (no onnxruntime here).

Installing a bundle on a device (unpack, self-test, atomic switch) is edgekit.runtime.install.
"""

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
