"""Signed model versions: the manifest (which holds model.joblib's sha256) is signed with an asymmetric KMS key when
it is registered, and every load verifies that signature before anything is unpickled.

The sha256 in the manifest stops a corrupted or swapped model.joblib, but whoever can write to the registry can
also write a new manifest with a matching sha256. A signature from a key that only the signing role may use closes
that: without kms:Sign on the key, no one can produce a manifest that loads. Verification calls KMS Verify, which
needs only kms:Verify (the public key never has to be distributed).

    MODELOPS_SIGNING_KEY   ARN (or id or alias) of the KMS key (KeySpec ECC_NIST_P256, KeyUsage SIGN_VERIFY).
                           When set, registering signs and loading requires a valid signature; when unset, neither.

signature.json, next to manifest.json: {"key_id", "algorithm", "digest": sha256 of manifest.json, "signature"}.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..adapters.aws import aws_errors, client
from ..core import env as settings
from ..core.errors import ArtifactIntegrityError
from .artifact import SIGNATURE_FILE

ALGORITHM = "ECDSA_SHA_256"
KEY_VAR = "MODELOPS_SIGNING_KEY"


class KmsSigner:
    def __init__(self, key_id: str, kms: Any = None):
        self.key_id = key_id
        self.kms = kms if kms is not None else client("kms")

    def sign(self, manifest: bytes) -> bytes:
        """signature.json for these exact manifest bytes."""
        digest = hashlib.sha256(manifest).digest()
        with aws_errors(f"signing with KMS key {self.key_id}"):
            answer = self.kms.sign(KeyId=self.key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=ALGORITHM)
        return json.dumps(
            {
                "key_id": answer.get("KeyId", self.key_id),
                "algorithm": ALGORITHM,
                "digest": digest.hex(),
                "signature": base64.b64encode(answer["Signature"]).decode(),
            },
            indent=1,
        ).encode()

    def verify(self, manifest: bytes, signature: bytes | None, what: str) -> None:
        """Raise ArtifactIntegrityError unless `signature` is this key's valid signature of `manifest`."""
        if signature is None:
            raise ArtifactIntegrityError(
                f"{what}: {SIGNATURE_FILE} is missing and signatures are required; refusing to load it"
            )
        try:
            doc = json.loads(signature)
            raw = base64.b64decode(doc["signature"], validate=True)
        except (ValueError, KeyError, TypeError):
            raise ArtifactIntegrityError(f"{what}: {SIGNATURE_FILE} is not a signature; refusing to load it") from None
        digest = hashlib.sha256(manifest).digest()
        try:
            with aws_errors(f"verifying the signature of {what}"):
                answer = self.kms.verify(
                    KeyId=self.key_id,
                    Message=digest,
                    MessageType="DIGEST",
                    Signature=raw,
                    SigningAlgorithm=doc.get("algorithm", ALGORITHM),
                )
        except Exception as exc:  # KMSInvalidSignatureException, a wrong key or algorithm: not a valid signature
            if "InvalidSignature" not in type(exc).__name__ and "InvalidSignature" not in str(exc):
                raise
            answer = {"SignatureValid": False}
        if not answer.get("SignatureValid"):
            raise ArtifactIntegrityError(
                f"{what}: the manifest's signature is not valid for key {self.key_id}; refusing to load it"
            )


def signer_from_env(env: Mapping[str, str] | None = None) -> KmsSigner | None:
    key = settings.text(KEY_VAR, env=env)
    return KmsSigner(key) if key else None
