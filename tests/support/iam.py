"""S3 under a function's IAM policy, for tests: each call is evaluated as AWS would before moto answers it.

moto does not enforce IAM, and it answers a missing key with 404 whoever asks. `enforce(client, policy)` makes a
moto S3 client refuse what the policy does not allow, following AWS's documented rules:

- Evaluation: an explicit Deny in the identity or the bucket policy wins, then an Allow in the identity policy;
  otherwise the request is denied (IAM user guide, "Policy evaluation logic").
- The action and resource of each API call (S3's "Actions, resources and condition keys"): HeadObject needs
  s3:GetObject; ListObjectsV2 is s3:ListBucket on the bucket with s3:prefix taken from Prefix; HeadBucket needs
  s3:ListBucket; multipart uploads need s3:PutObject; DeleteObjects needs s3:DeleteObject for every key.
- Conditions: StringEquals, StringLike, Bool and their ...IfExists forms, and Null; a key missing from the request
  fails the condition, except with IfExists (IAM user guide, condition operators). An operator not listed fails the
  test. A conditional write carries s3:if-none-match / s3:if-match (S3 user guide, "Enforce conditional writes").
- A missing key: GetObject and HeadObject answer 404 only when the caller has s3:ListBucket on the bucket, 403
  otherwise (S3 API reference, GetObject and HeadObject, "Permissions"). AWS does not document whether that
  ListBucket check carries the key as s3:prefix (Ceph, which follows AWS, says it does), so `key_as_prefix` runs
  either reading; the stricter one (no s3:prefix) is the default.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from devtools.template import LocalContext, Template

S3 = "arn:aws:s3:::"


@dataclass
class Policy:
    identity: list[dict[str, Any]]
    bucket: list[dict[str, Any]] = field(default_factory=list)
    key_as_prefix: bool = False
    denied: list[str] = field(default_factory=list)  # every refused request, for assertions and messages


def role_policy(translated: dict, role: str, template_path: Any, context: LocalContext, **kwargs: Any) -> Policy:
    """The inline statements of a role and the bucket policies of the translated template, resolved locally."""
    t = Template(template_path, context)
    t.doc = {**t.doc, "Resources": translated}
    t.resources = translated
    # Statements are resolved as lists, so a conditional one (Fn::If with AWS::NoValue) drops out as in CloudFormation.
    identity = [
        statement
        for policy in translated[role]["Properties"].get("Policies", [])
        for statement in t.resolve(policy["PolicyDocument"]["Statement"])
    ]
    bucket = [
        statement
        for resource in translated.values()
        if resource["Type"] == "AWS::S3::BucketPolicy"
        for statement in t.resolve(resource["Properties"]["PolicyDocument"]["Statement"])
    ]
    return Policy(identity, bucket, **kwargs)


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str, *, ignore_case: bool = False) -> bool:
    for pattern in _listify(patterns):
        if ignore_case and fnmatch.fnmatchcase(value.lower(), str(pattern).lower()):
            return True
        if not ignore_case and fnmatch.fnmatchcase(value, str(pattern)):
            return True
    return False


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        base = operator.removesuffix("IfExists")
        if_exists = base != operator
        for key, expected in tests.items():
            if base == "Null":  # "true": the key is absent from the request; "false": it is present
                if (key not in context) != (str(expected).lower() == "true"):
                    return False
                continue
            if key not in context:
                if if_exists:
                    continue
                return False
            actual = context[key]
            if base == "StringEquals":
                ok = actual in [str(e) for e in _listify(expected)]
            elif base == "StringLike":
                ok = _matches(expected, actual)
            elif base == "Bool":
                ok = actual.lower() in [str(e).lower() for e in _listify(expected)]
            else:
                raise AssertionError(f"condition operator {operator} is not modelled by this test helper")
            if not ok:
                return False
    return True


def _applies(statement: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> bool:
    return (
        _matches(statement["Action"], action, ignore_case=True)
        and _matches(statement["Resource"], resource)
        and _condition_holds(statement.get("Condition") or {}, context)
    )


def allowed(policy: Policy, action: str, resource: str, context: dict[str, str]) -> bool:
    context = {"aws:SecureTransport": "true", **context}
    statements = [*policy.identity, *policy.bucket]
    if any(s["Effect"] == "Deny" and _applies(s, action, resource, context) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _applies(s, action, resource, context) for s in policy.identity)


def requests(operation: str, params: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, str]]]:
    """(action, resource, condition context) of each authorization an S3 API call needs."""
    bucket = params.get("Bucket", "")
    key = params.get("Key", "")
    obj, whole = f"{S3}{bucket}/{key}", f"{S3}{bucket}"
    if operation in ("GetObject", "HeadObject"):
        yield "s3:GetObject", obj, {}
    elif operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        headers = {"IfNoneMatch": "s3:if-none-match", "IfMatch": "s3:if-match"}
        conditional = {key: str(params[h]) for h, key in headers.items() if h in params}
        yield "s3:PutObject", obj, conditional
    elif operation == "AbortMultipartUpload":
        yield "s3:AbortMultipartUpload", obj, {}
    elif operation == "DeleteObject":
        yield "s3:DeleteObject", obj, {}
    elif operation == "DeleteObjects":
        for item in params["Delete"]["Objects"]:
            yield "s3:DeleteObject", f"{S3}{bucket}/{item['Key']}", {}
    elif operation in ("ListObjectsV2", "ListObjects"):
        context = {"s3:prefix": params["Prefix"]} if params.get("Prefix") else {}
        yield "s3:ListBucket", whole, context
    elif operation == "ListMultipartUploads":
        yield "s3:ListBucketMultipartUploads", whole, {}
    elif operation == "HeadBucket":
        yield "s3:ListBucket", whole, {}
    elif operation == "CopyObject":
        source = params["CopySource"]
        source = source if isinstance(source, str) else f"{source['Bucket']}/{source['Key']}"
        yield "s3:GetObject", f"{S3}{source.lstrip('/')}", {}
        yield "s3:PutObject", obj, {}
    else:
        raise AssertionError(f"S3 {operation} is not modelled by this test helper")


def _refusal(operation: str, status: int = 403) -> tuple[Any, dict[str, Any]]:
    code = "AccessDenied" if operation != "HeadObject" else "403"  # HEAD answers carry no error body
    http = SimpleNamespace(status_code=status, headers={}, content=b"", raw=None)
    return http, {"Error": {"Code": code, "Message": "Access Denied"}, "ResponseMetadata": {"HTTPStatusCode": status}}


def enforce(client: Any, policy: Policy, raw: Any) -> Any:
    """Make `client` (moto S3) answer as S3 would to a caller with `policy`; `raw` is an unenforced client used to
    look up whether a key exists."""

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["modelops_params"] = dict(params)

    def check(model: Any, context: dict[str, Any], **_: Any) -> Any:
        operation, params = model.name, context.get("modelops_params", {})
        for action, resource, condition in requests(operation, params):
            if not allowed(policy, action, resource, condition):
                policy.denied.append(f"{operation} {resource} ({action})")
                return _refusal(operation)
        if operation in ("GetObject", "HeadObject"):
            listed = raw.list_objects_v2(Bucket=params["Bucket"], Prefix=params["Key"], MaxKeys=1)
            exists = any(o["Key"] == params["Key"] for o in listed.get("Contents", []))
            context_keys = {"s3:prefix": params["Key"]} if policy.key_as_prefix else {}
            if not exists and not allowed(policy, "s3:ListBucket", f"{S3}{params['Bucket']}", context_keys):
                policy.denied.append(f"{operation} {params['Key']} (missing, and no s3:ListBucket: 403)")
                return _refusal(operation)
        return None

    client.meta.events.register("before-parameter-build.s3", remember)
    client.meta.events.register("before-call.s3", check)
    return client


def describe(policy: Policy) -> str:
    return json.dumps(policy.denied, indent=1)
