"""Attack: whoever can write to the registry prefix replaces a registered version's model.joblib with a pickle that
runs code on load, together with a manifest whose sha256 matches the new file. The sha256 check alone cannot stop
that; the manifest's signature (modelops.model.signing, ModelSigning=kms) does, because the attacker has no kms:Sign on
the stack's key. Every load path is tried: the registry, the predict function's cached download, an artifact
directory. KMS is moto's (it implements Sign and Verify for asymmetric keys); a failed verification is answered the
way AWS documents it, KMSInvalidSignatureException, through a Stubber."""

from __future__ import annotations

import io
import pickle

import boto3
import joblib
import pytest
from botocore.stub import Stubber
from modelops.core.errors import ArtifactIntegrityError
from modelops.model.artifact import MANIFEST_FILE, MODEL_FILE, SIGNATURE_FILE, Manifest, sha256_bytes
from modelops.model.signing import KmsSigner
from modelops.registry import Registry

PWNED = "modelops-pwned-marker"


class RunsOnLoad:
    """A pickle that creates a file when it is unpickled."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def signing_key(moto_aws, monkeypatch):
    kms = boto3.client("kms")
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("MODELOPS_SIGNING_KEY", key)
    return key


def tamper(registry: Registry, name: str, version: str, marker) -> None:
    """What an attacker with s3:PutObject on the prefix (and no kms:Sign) writes: a new model and a matching
    manifest. (The bucket policy's If-None-Match rule stops this in AWS; here the store is written directly.)"""
    buffer = io.BytesIO()
    joblib.dump(RunsOnLoad(str(marker)), buffer)
    evil = buffer.getvalue()
    manifest = registry.manifest(name, version)
    manifest.artifact = {"file": MODEL_FILE, "sha256": sha256_bytes(evil), "bytes": len(evil)}
    registry.store.put(registry.version_key(name, version, MODEL_FILE), evil)
    registry.store.put(registry.version_key(name, version, MANIFEST_FILE), manifest.to_json())


def test_a_signed_version_loads_and_a_tampered_pair_is_refused_before_unpickling(
    registry, classifier_dir, signing_key, tmp_path
):
    signed = Registry(registry.uri, s3=registry.s3)  # MODELOPS_SIGNING_KEY: signs on register, verifies on load
    version = signed.register(classifier_dir).version
    assert signed.load("breast-cancer", version).manifest.version == version  # the original loads
    marker = tmp_path / PWNED
    tamper(signed, "breast-cancer", version, marker)
    with pytest.raises(ArtifactIntegrityError, match="signature is not valid"):
        signed.load("breast-cancer", version)
    assert not marker.exists()  # nothing was unpickled


def test_the_predict_functions_cached_download_is_verified_too(registry, classifier_dir, signing_key, tmp_path):
    from modelops.serving.model_holder import RegistrySource

    signed = Registry(registry.uri, s3=registry.s3)
    version = signed.register(classifier_dir).version
    source = RegistrySource(registry.uri, "breast-cancer", version, tmp_path / "cache", s3=registry.s3)
    assert source.load().manifest.version == version
    # the cached copy itself is changed (the same pair, written into the function's /tmp cache)
    cached = tmp_path / "cache" / "breast-cancer" / version
    marker = tmp_path / PWNED
    buffer = io.BytesIO()
    joblib.dump(RunsOnLoad(str(marker)), buffer)
    (cached / MODEL_FILE).write_bytes(buffer.getvalue())
    manifest = Manifest.from_json((cached / MANIFEST_FILE).read_bytes())
    manifest.artifact["sha256"] = sha256_bytes(buffer.getvalue())
    (cached / MANIFEST_FILE).write_bytes(manifest.to_json())
    # the bad copy is refused and replaced by a fresh, verified download
    assert source.load().manifest.version == version and not marker.exists()
    tamper(signed, "breast-cancer", version, marker)
    (cached / SIGNATURE_FILE).unlink()
    with pytest.raises(ArtifactIntegrityError):
        RegistrySource(registry.uri, "breast-cancer", version, tmp_path / "cache2", s3=registry.s3).load()
    assert not marker.exists()


def test_an_unsigned_version_is_refused_when_signatures_are_required(registry, classifier_dir, signing_key, tmp_path):
    unsigned = Registry(registry.uri, s3=registry.s3, signer=None)
    version = unsigned.register(classifier_dir).version
    with pytest.raises(ArtifactIntegrityError, match="signature.json is missing"):
        Registry(registry.uri, s3=registry.s3).load("breast-cancer", version)


def test_a_signature_from_another_key_is_refused(registry, classifier_dir, signing_key):
    kms = boto3.client("kms")
    other = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    version = Registry(registry.uri, s3=registry.s3, signer=KmsSigner(other)).register(classifier_dir).version
    with pytest.raises(ArtifactIntegrityError, match="not valid"):
        Registry(registry.uri, s3=registry.s3).load("breast-cancer", version)


def test_kms_invalid_signature_exception_is_a_refusal(registry, classifier_dir, signing_key):
    """AWS answers a signature that does not verify with KMSInvalidSignatureException (KMS API reference, Verify)."""
    version = Registry(registry.uri, s3=registry.s3).register(classifier_dir).version
    kms = boto3.client("kms")
    with Stubber(kms) as stub:
        stub.add_client_error("verify", "KMSInvalidSignatureException", "signature invalid")
        with pytest.raises(ArtifactIntegrityError, match="not valid"):
            Registry(registry.uri, s3=registry.s3, signer=KmsSigner(signing_key, kms)).load("breast-cancer", version)


def test_signature_json_names_the_key_and_the_manifest_digest(registry, classifier_dir, signing_key):
    import json

    version = Registry(registry.uri, s3=registry.s3).register(classifier_dir).version
    body, _ = registry.store.get(registry.version_key("breast-cancer", version, SIGNATURE_FILE))
    manifest, _ = registry.store.get(registry.version_key("breast-cancer", version, MANIFEST_FILE))
    doc = json.loads(body)
    assert doc["key_id"] == signing_key and doc["algorithm"] == "ECDSA_SHA_256"
    assert doc["digest"] == sha256_bytes(manifest)


def test_the_attack_pickle_really_runs_code_when_loaded_unverified(tmp_path):
    """The test's own premise: loading the attacker's file without the checks would have run its code."""
    marker = tmp_path / PWNED
    pickle.loads(pickle.dumps(RunsOnLoad(str(marker)))).close()
    assert marker.exists()
