"""boto3 access with the standard configuration chain (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION,
profiles), plus translation of common botocore failures into one-line user errors."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from ..core.errors import ConflictError, ModelOpsError, NotFoundError


def client(service: str, *, timeout: float | None = None, max_attempts: int = 5) -> Any:
    """A client of its own session; `timeout` bounds connecting and each read (for calls that may fail fast)."""
    import boto3
    from botocore.config import Config

    retries: Any = {"mode": "standard", "max_attempts": max_attempts}
    if timeout is None:
        config = Config(retries=retries)
    else:
        config = Config(retries=retries, connect_timeout=timeout, read_timeout=timeout)
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


def preimport() -> None:
    """Import boto3 and botocore without building a client (a SnapStart snapshot then holds the imports)."""
    import boto3  # noqa: F401
    import botocore.session  # noqa: F401


def forget_default_session() -> None:
    """Drop boto3's module-level default session, so the next boto3.client() resolves credentials afresh."""
    boto3 = sys.modules.get("boto3")
    if boto3 is not None:
        setattr(boto3, "DEFAULT_SESSION", None)  # noqa: B010 (a module found in sys.modules)


def botocore_failure(exc: BaseException) -> str | None:
    """A one-line account of a botocore exception raised outside `aws_errors`, or None for anything else."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID)"
    if isinstance(exc, bex.BotoCoreError | bex.ClientError):
        return str(exc)
    return None


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ModelOpsError(f"'{uri}' is not an S3 URI: expected s3://bucket[/prefix]")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise ModelOpsError(f"'{uri}' has no bucket name")
    return bucket, prefix.strip("/")


def error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


PRECONDITION_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
NOT_FOUND_CODES = {
    "NoSuchKey",
    "404",
    "NotFound",
    "ParameterNotFound",
    "ChangeSetNotFound",
    "ChangeSetNotFoundException",
}
ALREADY_EXISTS_CODES = {"ParameterAlreadyExists", "AlreadyExistsException"}
DENIED_CODES = {"AccessDenied", "403", "Forbidden"}


def lost_conditional_write(exc: Exception) -> bool:
    """True when an If-Match / If-None-Match write was refused because the object changed."""
    return error_code(exc) in PRECONDITION_CODES


@contextlib.contextmanager
def aws_errors(what: str, bucket: str | None = None) -> Iterator[None]:
    """Turn botocore exceptions into ModelOpsError subclasses with a readable message."""
    from botocore import exceptions as bex

    try:
        yield
    except bex.NoCredentialsError:
        raise ModelOpsError(
            f"{what}: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        ) from None
    except bex.NoRegionError:
        raise ModelOpsError(f"{what}: no AWS region configured (set AWS_DEFAULT_REGION)") from None
    except bex.EndpointConnectionError as exc:
        raise ModelOpsError(f"{what}: cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}") from None
    except bex.ClientError as exc:
        code = error_code(exc)
        if code == "NoSuchBucket":
            raise NotFoundError(f"{what}: bucket '{bucket}' does not exist") from None
        if code in NOT_FOUND_CODES:
            raise NotFoundError(f"{what}: not found") from None
        if code in ALREADY_EXISTS_CODES:
            raise ConflictError(f"{what}: already exists") from None
        if lost_conditional_write(exc):
            raise ConflictError(f"{what}: changed concurrently by someone else; re-read and retry") from None
        if code in DENIED_CODES | {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}:
            raise ModelOpsError(f"{what}: access denied ({code})") from None
        raise ModelOpsError(f"{what}: {code or 'error'}: {exc}") from None


# ---- S3 reads of keys that may not exist ----------------------------------------------------------------
# S3 answers GetObject/HeadObject on a missing key with 404 only when the caller may s3:ListBucket the bucket, and
# with 403 otherwise. Whether a ListBucket grant limited by an s3:prefix condition counts for that check is not
# documented, so a 403 is settled with a listing of exactly that key, which such a grant does allow: absent means
# NotFoundError, present means the read really was denied.
def key_absent(s3: Any, bucket: str, key: str) -> bool | None:
    """True when a listing shows key does not exist, False when it exists, None when the listing is refused too."""
    from botocore.exceptions import ClientError

    try:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    except ClientError as exc:
        if error_code(exc) in DENIED_CODES:
            return None
        raise
    return not any(o.get("Key") == key for o in listed.get("Contents", []))


@contextlib.contextmanager
def _missing_as_not_found(s3: Any, bucket: str, key: str, what: str) -> Iterator[None]:
    from botocore.exceptions import ClientError

    with aws_errors(what, bucket):
        try:
            yield
        except ClientError as exc:
            if error_code(exc) in DENIED_CODES and key_absent(s3, bucket, key):
                raise NotFoundError(f"{what}: not found") from None
            raise


def s3_get(s3: Any, bucket: str, key: str, what: str, **kwargs: Any) -> dict[str, Any]:
    """GetObject; a missing key raises NotFoundError whatever S3's status code for it."""
    with _missing_as_not_found(s3, bucket, key, what):
        return dict(s3.get_object(Bucket=bucket, Key=key, **kwargs))


def s3_head(s3: Any, bucket: str, key: str, what: str) -> dict[str, Any] | None:
    """HeadObject, or None when the key does not exist."""
    try:
        with _missing_as_not_found(s3, bucket, key, what):
            return dict(s3.head_object(Bucket=bucket, Key=key))
    except NotFoundError:
        return None
