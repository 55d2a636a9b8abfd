"""Every function role may touch only the parts of the bucket its code uses, and the bucket itself keeps registered
versions and the audit history write-once. Checked on the translated template (the IAM evaluation of the same
policies against the code's real calls is tests/template/test_iam_s3_semantics.py)."""

from __future__ import annotations

import json

import pytest
from support.template import flatten

BUCKET_ARN = "${ModelBucket.Arn}"
MODEL = "${RegistryPrefix}/models/${ModelName}/*"
ALIASES = "${RegistryPrefix}/aliases/${ModelName}/*"
# What each role's code reads or writes in the bucket (object ARNs after the bucket ARN, and ListBucket prefixes).
ALLOWED = {
    "PredictFunctionRole": {MODEL},
    "FeedbackFunctionRole": {MODEL, "${DataPrefix}/feedback/*"},
    "PreTrafficHookFunctionRole": {MODEL, ALIASES},
    "BatchFunctionRole": {MODEL, ALIASES, "${BatchInputPrefix}/*", "${BatchOutputPrefix}/*"},
    "BatchWorkerFunctionRole": {MODEL, ALIASES, "${BatchInputPrefix}/*", "${BatchOutputPrefix}/*"},
    # the shadow reports: written only with ShadowScheduleState=ENABLED (test_template_shadow.py)
    "MonitorFunctionRole": {
        MODEL,
        ALIASES,
        "${DataPrefix}/captures/*",
        "${DataPrefix}/feedback/*",
        "${DataPrefix}/shadow/${ModelName}/*",
    },
    "RetrainFunctionRole": {
        MODEL,
        ALIASES,
        "${RegistryPrefix}/history/${ModelName}/*",
        "${RegistryPrefix}/locks/${ModelName}/*",
        "${DataPrefix}/captures/*",
        "${DataPrefix}/feedback/*",
        "${TrainingDataPrefix}/*",
    },
    "BatchStateMachineRole": {"${BatchOutputPrefix}/*"},
    # Firehose's documented S3 destination policy lists the bucket (s3:ListBucket, unscoped): key names only.
    "CaptureDeliveryRole": {"*", "${DataPrefix}/captures/*", "${DataPrefix}/capture-errors/*"},
}
WHOLE_BUCKET_LISTING_DOCUMENTED = {"CaptureDeliveryRole"}


def _text(value) -> str:
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
    if isinstance(value, dict) and value == {"Fn::GetAtt": ["ModelBucket", "Arn"]}:
        return BUCKET_ARN
    return json.dumps(value)


def bucket_access(role: dict) -> set[str]:
    """The parts of the bucket a role's S3 statements reach: object ARNs (after the bucket ARN) and the s3:prefix
    values its ListBucket is limited to; the whole bucket shows as '*'."""
    reached = set()
    for statement in (
        s for p in role["Properties"].get("Policies", []) for s in flatten(p["PolicyDocument"]["Statement"])
    ):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if not any(a.startswith("s3:") for a in actions):
            continue
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in map(_text, resources):
            if resource == BUCKET_ARN:  # a bucket-level action: ListBucket is scoped by its s3:prefix condition
                if "s3:ListBucket" in actions:
                    condition = statement.get("Condition") or {}
                    prefixes = [_text(p) for op in condition.values() for p in (op.get("s3:prefix") or [])]
                    # ...IfExists also allows a listing without any prefix: the whole bucket
                    unscoped = not prefixes or any(op.endswith("IfExists") for op in condition)
                    reached.update([*prefixes, *(["*"] if unscoped else [])])
            elif resource.startswith(BUCKET_ARN + "/"):
                reached.add(resource[len(BUCKET_ARN) + 1 :])
            elif "s3:::" in resource or resource == '"*"':
                reached.add("*")
    return reached


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_reaches_only_the_prefixes_its_code_uses(translated, role):
    reached = bucket_access(translated[role])
    assert "*" not in reached or role in WHOLE_BUCKET_LISTING_DOCUMENTED, f"{role} may reach the whole bucket"
    assert reached <= ALLOWED[role], f"{role} also reaches {sorted(reached - ALLOWED[role])}"


def test_every_role_with_bucket_access_is_listed(translated):
    roles = {lid for lid, r in translated.items() if r["Type"] == "AWS::IAM::Role" and bucket_access(r)}
    assert roles == set(ALLOWED)


def test_no_role_holds_a_wildcard_action_on_the_bucket(translated):
    for lid, r in translated.items():
        if r["Type"] != "AWS::IAM::Role":
            continue
        for policy in r["Properties"].get("Policies", []):
            for statement in flatten(policy["PolicyDocument"]["Statement"]):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert not any(a in ("s3:*", "*") for a in actions), lid


def test_registered_versions_and_history_are_write_once_for_everyone(translated):
    """S3 refuses a PutObject without If-None-Match there (condition key s3:if-none-match, S3 user guide "Enforce
    conditional writes"), and every delete: not even a principal with s3:* can replace a registered version."""
    statements = {s["Sid"]: s for s in translated["ModelBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    write_once = statements["RegisteredVersionsAndHistoryAreWriteOnce"]
    assert write_once["Effect"] == "Deny" and write_once["Principal"] == "*" and write_once["Action"] == "s3:PutObject"
    assert write_once["Condition"] == {"Null": {"s3:if-none-match": "true"}}
    protected = {_text(r) for r in write_once["Resource"]}
    assert {f"{BUCKET_ARN}/${{RegistryPrefix}}/models/*", f"{BUCKET_ARN}/${{RegistryPrefix}}/history/*"} <= protected
    never_deleted = statements["RegisteredVersionsAndHistoryAreNeverDeleted"]
    assert never_deleted["Effect"] == "Deny" and set(never_deleted["Action"]) == {
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
    }


def test_personal_data_expires_and_old_versions_go(translated):
    rules = {r["Id"]: r for r in translated["ModelBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    for rule in ("ExpireCapturedRequests", "ExpireCaptureErrors", "ExpireFeedback"):
        assert rules[rule]["ExpirationInDays"] == {"Fn::If": ["KeepDataForever", 1, {"Ref": "DataRetentionDays"}]}
        assert rules[rule]["Status"] == {"Fn::If": ["KeepDataForever", "Disabled", "Enabled"]}
    assert rules["ExpireOverwrittenAndDeletedVersions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "NoncurrentVersionRetentionDays"}
    }


def test_a_customer_key_encrypts_the_bucket_and_every_log_group(translated):
    encryption = translated["ModelBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["Fn::If"][0] == "CustomerKey"
    assert encryption["ServerSideEncryptionByDefault"]["Fn::If"][1] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Ref": "KmsKeyArn"},
    }
    groups = [r for r in translated.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert groups and all(
        g["Properties"]["KmsKeyId"] == {"Fn::If": ["CustomerKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
        for g in groups
    )


def test_signing_creates_a_sign_verify_key_that_only_the_retrain_role_may_sign_with(translated):
    key = translated["ModelSigningKey"]
    assert key["Condition"] == "SigningOn" and key["Properties"]["KeySpec"] == "ECC_NIST_P256"
    assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    signers = set()
    for lid, r in translated.items():
        if r["Type"] != "AWS::IAM::Role":
            continue
        for policy in r["Properties"].get("Policies", []):
            for statement in flatten(policy["PolicyDocument"]["Statement"]):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "kms:Sign" in actions:
                    signers.add(lid)
    assert signers == {"RetrainFunctionRole"}
