"""boto3 access with the standard configuration chain (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION,
profiles), plus translation of common botocore failures into one-line user errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .errors import ConflictError, ModelOpsError, NotFoundError


def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


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
        if code in ("NoSuchKey", "404", "NotFound"):
            raise NotFoundError(f"{what}: not found") from None
        if lost_conditional_write(exc):
            raise ConflictError(f"{what}: changed concurrently by someone else; re-read and retry") from None
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            raise ModelOpsError(f"{what}: access denied ({code})") from None
        raise ModelOpsError(f"{what}: {code or 'error'}: {exc}") from None
