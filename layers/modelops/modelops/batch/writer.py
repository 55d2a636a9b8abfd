"""Streaming output: buffered multipart upload, so memory is one part, not the whole file.

Output always goes to a run attempt's own keys first; the commit step publishes it. An upload that
fails is aborted, so no half-written object is ever left behind.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..aws import aws_errors

PART_BYTES = 8 * 1024**2  # S3 needs >= 5 MiB for every part but the last


class MultipartWriter:
    def __init__(self, s3: Any, bucket: str, key: str, content_type: str = "text/csv", part_bytes: int | None = None):
        self.s3, self.bucket, self.key = s3, bucket, key
        self.content_type = content_type
        self.part_bytes = part_bytes or PART_BYTES
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= self.part_bytes:
            self._flush()

    def _flush(self) -> None:
        body = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        what = f"writing s3://{self.bucket}/{self.key}"
        with aws_errors(what, self.bucket):
            if self._upload_id is None:
                self._upload_id = self.s3.create_multipart_upload(
                    Bucket=self.bucket, Key=self.key, ContentType=self.content_type)["UploadId"]
            number = len(self._parts) + 1
            etag = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                       PartNumber=number, Body=body)["ETag"]
        self._parts.append({"PartNumber": number, "ETag": etag})
        self.bytes_written += len(body)

    def close(self) -> None:
        what = f"writing s3://{self.bucket}/{self.key}"
        if self._upload_id is None:  # small output: one plain put
            body = b"".join(self._buffer)
            with aws_errors(what, self.bucket):
                self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body, ContentType=self.content_type)
            self.bytes_written += len(body)
            self._buffer = []
            return
        if self._buffer:
            self._flush()
        with aws_errors(what, self.bucket):
            self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                              MultipartUpload={"Parts": self._parts})

    def abort(self) -> None:
        self._buffer = []
        if self._upload_id is not None:
            # best effort: the original error matters more; an incomplete upload is never readable
            with contextlib.suppress(Exception):
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)

    def __enter__(self) -> MultipartWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
