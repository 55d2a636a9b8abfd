"""Label tokens (modelops.capture.labeltoken): what the predict answer signs and POST /feedback verifies."""

from __future__ import annotations

import base64
import json

import pytest
from modelops.capture import labelsecret, labeltoken
from modelops.core.errors import InputError

SECRET = b"test-secret"
T0 = 1_780_000_000
WINDOW = 72 * 3600


def token(**overrides) -> str:
    fields = {"request_id": "req-1", "entity_id": "cust-7", "rows": 3, "model_version": "v2", "served_at": T0}
    return labeltoken.issue(SECRET, **{**fields, **overrides})


def refused(value, secret: bytes = SECRET, now: float = T0) -> InputError:
    with pytest.raises(InputError) as err:
        labeltoken.verify(value, secret, window_seconds=WINDOW, now=now)
    assert err.value.field == "label_token"
    return err.value


def test_a_token_round_trips_what_was_served():
    grant = labeltoken.verify(token(), SECRET, window_seconds=WINDOW, now=T0 + 60)
    assert grant == labeltoken.LabelGrant("req-1", "cust-7", 3, "v2", T0)
    assert labeltoken.verify(token(entity_id=None), SECRET, window_seconds=WINDOW, now=T0).entity_id is None


def test_the_token_is_compact_base64url_payload_dot_signature():
    text = token(request_id="x" * 36)
    payload, signature = text.split(".")
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert len(base64.urlsafe_b64decode(signature + "=")) == 32  # a whole SHA-256 HMAC
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))[1] == "x" * 36
    assert len(text) < 200


def test_missing_and_malformed_tokens_name_the_field():
    assert refused(None).code == "missing_field"
    for bad in ("", "no-dot", "a.b.c", 42, ["x"], "é.x", "x" * 5000):
        assert refused(bad).code == "malformed_label_token", bad


def test_forged_or_altered_tokens_are_refused():
    assert refused(token(), secret=b"another-secret").code == labeltoken.INVALID
    payload, signature = token().split(".")
    # another entity's payload under this request's signature
    other = token(entity_id="cust-8").split(".")[0]
    assert refused(f"{other}.{signature}").code == labeltoken.INVALID
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert refused(f"{payload}.{flipped}").code == labeltoken.INVALID
    # every field is signed: changing any one changes the signature
    base = token().split(".")[1]
    for change in ({"request_id": "req-2"}, {"rows": 4}, {"model_version": "v3"}, {"served_at": T0 + 1}):
        assert token(**change).split(".")[1] != base, change


def test_expiry_is_the_window_after_serving():
    labeltoken.verify(token(), SECRET, window_seconds=WINDOW, now=T0 + WINDOW)
    assert refused(token(), now=T0 + WINDOW + 1).code == "label_expired"
    assert refused(token(served_at=T0 + 3600), now=T0).code == "label_expired"  # from the future


def test_the_secret_comes_from_secrets_manager_when_configured(moto_aws, monkeypatch):
    import boto3

    boto3.client("secretsmanager").create_secret(Name="label-secret", SecretString="s3cr3t")
    assert labelsecret.secret({labelsecret.SECRET_ENV: "label-secret"}) == b"s3cr3t"
    with pytest.raises(labelsecret.LabelSecretUnavailable):
        labelsecret.secret({labelsecret.SECRET_ENV: "no-such-secret"})
    assert labelsecret.secret({}) == labelsecret.LOCAL_DEV_SECRET
    assert labelsecret.window_seconds({labelsecret.WINDOW_ENV: "2"}) == 7200
    assert labelsecret.window_seconds({}) == 72 * 3600
