"""The S3 calls batch scoring makes, in one small adapter that tests can wrap or stub."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from ..aws import aws_errors, client, s3_get, s3_head
from ..errors import ModelOpsError


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int


class Store:
    def __init__(self, bucket: str, s3: Any = None):
        self.bucket = bucket
        self.s3 = s3 if s3 is not None else client("s3")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def list(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        with aws_errors(f"listing {self.uri(prefix)}", self.bucket):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                out += [ObjectInfo(o["Key"], o["ETag"], o["Size"]) for o in page.get("Contents", [])]
        return out

    def head(self, key: str) -> ObjectInfo | None:
        meta = s3_head(self.s3, self.bucket, key, f"reading {self.uri(key)}")
        return None if meta is None else ObjectInfo(key, meta["ETag"], meta["ContentLength"])

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def get(self, key: str) -> bytes:
        obj = s3_get(self.s3, self.bucket, key, f"reading {self.uri(key)}")
        with aws_errors(f"reading {self.uri(key)}", self.bucket):
            return obj["Body"].read()

    def open_range(self, key: str, etag: str, start: int, end: int | None = None) -> Any:
        """A streamed body of the object from `start` (to `end`, exclusive, or to its end), as it was when
        planned: If-Match makes a changed object fail instead of mixing two versions."""
        what = f"reading {self.uri(key)}"
        span = f"bytes={start}-" + ("" if end is None else str(end - 1))
        try:
            with aws_errors(what, self.bucket):
                return self.s3.get_object(Bucket=self.bucket, Key=key, IfMatch=etag, Range=span)["Body"]
        except ModelOpsError as exc:
            if "changed concurrently" in str(exc):
                raise ModelOpsError(f"{what}: the object changed after the run was planned; rerun the date") from None
            raise

    def put(self, key: str, body: bytes, content_type: str = "application/json", if_none_match: bool = False) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body, "ContentType": content_type}
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        with aws_errors(f"writing {self.uri(key)}", self.bucket):
            self.s3.put_object(**kwargs)

    def delete(self, keys: builtins.list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            with aws_errors(f"deleting under {self.uri(keys[0])}", self.bucket):
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
