"""Streaming output: buffered multipart upload, so memory is two parts (one filling, one uploading in a
background thread), not the whole file.

Output always goes to a run attempt's own keys first; the commit step publishes it. An upload that
fails is aborted, so no half-written object is ever left behind.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..ports import ObjectStore

PART_BYTES = 8 * 1024**2  # S3 needs >= 5 MiB for every part but the last


class MultipartWriter:
    """With deferred=True the upload is left open on close: nothing is readable at `key` until a later
    commit calls complete_upload(), which publishes the whole object at once without copying data."""

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        content_type: str = "text/csv",
        part_bytes: int | None = None,
        deferred: bool = False,
    ):
        self.store, self.key = store, key
        self.deferred = deferred
        self.upload: dict[str, Any] | None = None  # deferred: what complete_upload() needs
        self.content_type = content_type
        self.part_bytes = part_bytes or PART_BYTES
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._uploader: ThreadPoolExecutor | None = None
        self._pending: Future | None = None  # at most one part uploads while the next one fills
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
        if self._upload_id is None:
            self._upload_id = self.store.create_upload(self.key, self.content_type)
            self._uploader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-upload")
        self._wait()
        self._pending = self._uploader.submit(self._upload, len(self._parts) + 1, body)  # type: ignore[union-attr]

    def _upload(self, number: int, body: bytes) -> dict[str, Any]:
        assert self._upload_id is not None
        etag = self.store.upload_part(self.key, self._upload_id, number, body)
        return {"PartNumber": number, "ETag": etag, "size": len(body)}

    def _wait(self) -> None:
        if self._pending is not None:
            part, self._pending = self._pending.result(), None
            self.bytes_written += part.pop("size")
            self._parts.append(part)

    def close(self) -> None:
        if self.deferred and self._upload_id is None:
            self._flush()  # even a small output becomes a (single-part) upload, so it stays invisible
        if self._upload_id is None:  # small output: one plain put
            body = b"".join(self._buffer)
            self.store.put(self.key, body, content_type=self.content_type)
            self.bytes_written += len(body)
            self._buffer = []
            return
        try:
            if self._buffer:
                self._flush()
            self._wait()
            if self.deferred:
                self.upload = {"key": self.key, "upload_id": self._upload_id, "parts": self._parts}
            else:
                self.store.complete_upload(self.key, self._upload_id, self._parts)
        except BaseException:
            self.abort()
            raise
        self._shutdown()

    def abort(self) -> None:
        self._buffer = []
        if self._pending is not None:
            with contextlib.suppress(BaseException):
                self._pending.result()
            self._pending = None
        self._shutdown()
        if self._upload_id is not None:
            # best effort: the original error matters more; an incomplete upload is never readable
            with contextlib.suppress(Exception):
                self.store.abort_upload(self.key, self._upload_id)

    def _shutdown(self) -> None:
        if self._uploader is not None:
            self._uploader.shutdown(wait=True)
            self._uploader = None

    def __enter__(self) -> MultipartWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def abort_uploads(store: ObjectStore, prefix: str, keep: set[str]) -> int:
    """Abort open uploads under prefix (left by failed or retried attempts), except the upload ids in keep."""
    aborted = 0
    for key, upload_id in store.open_uploads(prefix):
        if upload_id not in keep:
            store.abort_upload(key, upload_id)
            aborted += 1
    return aborted
