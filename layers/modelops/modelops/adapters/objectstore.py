"""The object-store adapters: objects in one bucket (or one local directory) behind modelops.ports.ObjectStore,
what the registry, batch, feedback and the retrain lock need from storage. S3ObjectStore (boto3) and
LocalObjectStore (a directory on disk, so every command works with no AWS and no emulator).

Both give the same guarantees the callers depend on:
    get / head          a missing key is NotFoundError / None (never "access denied", see aws.s3_get)
    put                 if_none_match: fails with ConflictError when the key exists (never overwrites);
                        if_match=<etag>: fails with ConflictError unless the object still has that ETag
    list                keys in lexicographic order, from start_after
    open_range          a byte range of the object as it was (etag), or ConflictError if it changed
    multipart uploads   nothing is visible at the key until complete_upload publishes the whole object"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..core.errors import ConflictError, ModelOpsError, NotFoundError
from ..ports import ObjectStore, StoredObject
from .aws import aws_errors, client, parse_s3_uri, s3_get, s3_head

LOCAL_SCHEME = "file://"


def read_state(store: ObjectStore, key: str) -> tuple[dict[str, Any], str | None]:
    """The JSON object at key and its ETag; ({}, None) when there is none yet."""
    try:
        body, etag = store.get(key)
    except NotFoundError:
        return {}, None
    return json.loads(body), etag


def swap_state(store: ObjectStore, key: str, body: bytes, etag: str | None) -> None:
    """Replace the object only if it still has the ETag that was read (etag None: only if there is none yet);
    ConflictError when another writer changed it in between."""
    store.put(key, body, content_type="application/json", if_match=etag, if_none_match=etag is None)


def is_local(location: str) -> bool:
    return not location.startswith("s3://")


def open_location(location: str, s3: Any = None) -> tuple[ObjectStore, str]:
    """(store, key prefix) for s3://bucket/prefix, file:///path or a plain directory path."""
    if not location:
        raise ModelOpsError("no storage location given (s3://bucket/prefix or a local directory)")
    if location.startswith("s3://"):
        bucket, prefix = parse_s3_uri(location)
        return S3ObjectStore(bucket, s3), prefix
    path = location[len(LOCAL_SCHEME) :] if location.startswith(LOCAL_SCHEME) else location
    return LocalObjectStore(Path(path)), ""


def open_bucket(bucket: str, s3: Any = None) -> ObjectStore:
    """A batch data bucket: an S3 bucket name, or a local directory (a path or file:// URI)."""
    if bucket.startswith((LOCAL_SCHEME, "/", "./", "../", "~")) or os.sep in bucket:
        return open_location(bucket)[0]
    return S3ObjectStore(bucket, s3)


class S3ObjectStore:
    def __init__(self, bucket: str, s3: Any = None):
        self.bucket = bucket
        self.s3 = s3 if s3 is not None else client("s3")

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    def check(self, prefix: str = "") -> None:
        # A listing rather than HeadBucket: HeadBucket needs s3:ListBucket without any s3:prefix, i.e. on the
        # whole bucket, which no function role is given.
        try:
            with aws_errors(f"bucket {self.bucket}", self.bucket):
                self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except NotFoundError:
            raise NotFoundError(f"bucket '{self.bucket}' does not exist") from None

    def get(self, key: str) -> tuple[bytes, str]:
        what = f"reading {self.uri(key)}"
        obj = s3_get(self.s3, self.bucket, key, what)
        with aws_errors(what, self.bucket):
            return obj["Body"].read(), obj["ETag"]

    def head(self, key: str) -> StoredObject | None:
        meta = s3_head(self.s3, self.bucket, key, f"reading {self.uri(key)}")
        return None if meta is None else StoredObject(key, meta["ETag"], int(meta["ContentLength"]))

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[StoredObject]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        with aws_errors(f"listing {self.uri(prefix)}", self.bucket):
            for page in self.s3.get_paginator("list_objects_v2").paginate(**kwargs):
                for o in page.get("Contents", []):
                    yield StoredObject(o["Key"], o["ETag"], int(o["Size"]))

    def folders(self, prefix: str) -> builtins.list[str]:
        out: builtins.list[str] = []
        with aws_errors(f"listing {self.uri(prefix)}", self.bucket):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            for page in pages:
                out += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return out

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body, "ContentType": content_type}
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        if if_match:
            kwargs["IfMatch"] = if_match
        with aws_errors(f"writing {self.uri(key)}", self.bucket):
            return str(self.s3.put_object(**kwargs).get("ETag", ""))

    def delete(self, keys: builtins.list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            with aws_errors(f"deleting under {self.uri(keys[0])}", self.bucket):
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def open_range(self, key: str, etag: str, start: int, end: int | None = None) -> IO[bytes]:
        """A streamed body of the object from `start` (to `end`, exclusive, or to its end), as it was when
        planned: If-Match makes a changed object fail instead of mixing two versions."""
        what = f"reading {self.uri(key)}"
        span = f"bytes={start}-" + ("" if end is None else str(end - 1))
        try:
            with aws_errors(what, self.bucket):
                body: IO[bytes] = self.s3.get_object(Bucket=self.bucket, Key=key, IfMatch=etag, Range=span)["Body"]
                return body
        except ConflictError:
            raise ConflictError(f"{what}: the object changed after the run was planned; rerun the date") from None

    def create_upload(self, key: str, content_type: str) -> str:
        with aws_errors(f"writing {self.uri(key)}", self.bucket):
            return str(
                self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)["UploadId"]
            )

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str:
        with aws_errors(f"writing {self.uri(key)}", self.bucket):
            return str(
                self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)[
                    "ETag"
                ]
            )

    def complete_upload(self, key: str, upload_id: str, parts: builtins.list[dict[str, Any]]) -> None:
        with aws_errors(f"writing {self.uri(key)}", self.bucket):
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )

    def abort_upload(self, key: str, upload_id: str) -> None:
        with aws_errors(f"aborting the upload of {self.uri(key)}", self.bucket):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def open_uploads(self, prefix: str) -> builtins.list[tuple[str, str]]:
        out: builtins.list[tuple[str, str]] = []
        with aws_errors(f"listing uploads under {self.uri(prefix)}", self.bucket):
            for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
                out += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        return out


INTERNAL = ".modelops-store"  # uploads, temporary files and the write lock live here, never listed


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def _file_etag(st: os.stat_result) -> str:
    """Changes with every write (each one lands as a new file by rename), without reading the file."""
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


class LocalObjectStore:
    """Keys are files under a directory. Conditional writes hold an exclusive lock on the directory (flock), so
    they are atomic across processes on one machine; every write lands by rename, so a reader never sees half a
    file."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser()
        self.bucket = str(self.root)

    def uri(self, key: str = "") -> str:
        return f"{LOCAL_SCHEME}{self.root.resolve()}" + (f"/{key}" if key else "")

    def check(self, prefix: str = "") -> None:
        if not self.root.is_dir():
            raise NotFoundError(f"directory {self.root} does not exist")

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == INTERNAL:
            raise ModelOpsError(f"'{key}' is not a valid object key")
        return self.root.joinpath(*parts)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        internal = self.root / INTERNAL
        internal.mkdir(parents=True, exist_ok=True)
        with open(internal / "lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, path: Path, body: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.root / INTERNAL / f"tmp-{secrets.token_hex(8)}"
        staging.parent.mkdir(parents=True, exist_ok=True)
        staging.write_bytes(body)
        os.replace(staging, path)

    def get(self, key: str) -> tuple[bytes, str]:
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                st = os.fstat(handle.fileno())
                return handle.read(), _file_etag(st)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"reading {self.uri(key)}: not found") from None

    def head(self, key: str) -> StoredObject | None:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return StoredObject(key, _file_etag(st), st.st_size) if not os.path.isdir(self._path(key)) else None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _keys(self, prefix: str) -> builtins.list[str]:
        base = self.root
        if not base.is_dir():
            return []
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base.joinpath(*head.split("/")) if head else base
        if not start.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(base).as_posix()
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d != INTERNAL]
                rel_dir = ""
            for name in filenames:
                key = f"{rel_dir}/{name}" if rel_dir else name
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[StoredObject]:
        for key in self._keys(prefix):
            if start_after is not None and key <= start_after:
                continue
            found = self.head(key)
            if found is not None:
                yield found

    def folders(self, prefix: str) -> builtins.list[str]:
        names = {key[len(prefix) :].split("/", 1)[0] for key in self._keys(prefix) if "/" in key[len(prefix) :]}
        return sorted(names)

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        path = self._path(key)
        with self._locked():
            current = self.head(key)
            if if_none_match and current is not None:
                raise ConflictError(f"writing {self.uri(key)}: it already exists")
            if if_match is not None and (current is None or current.etag != if_match):
                raise ConflictError(f"writing {self.uri(key)}: changed concurrently by someone else")
            self._write(path, body)
            return _file_etag(path.stat())

    def delete(self, keys: builtins.list[str]) -> None:
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                self._path(key).unlink()

    def open_range(self, key: str, etag: str, start: int, end: int | None = None) -> IO[bytes]:
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 - the caller reads and closes it
        except FileNotFoundError:
            raise NotFoundError(f"reading {self.uri(key)}: not found") from None
        if _file_etag(os.fstat(handle.fileno())) != etag:
            handle.close()
            raise ConflictError(
                f"reading {self.uri(key)}: the object changed after the run was planned; rerun the date"
            )
        handle.seek(start)
        return handle if end is None else io.BytesIO(handle.read(end - start))

    # ---- uploads: parts are files in the upload's own folder until complete_upload renames the whole ----
    def _upload_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise ModelOpsError(f"'{upload_id}' is not an upload id")
        return self.root / INTERNAL / "uploads" / upload_id

    def create_upload(self, key: str, content_type: str) -> str:
        self._path(key)
        upload_id = secrets.token_hex(12)
        folder = self._upload_dir(upload_id)
        folder.mkdir(parents=True)
        (folder / "upload.json").write_text(json.dumps({"key": key, "content_type": content_type}))
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str:
        folder = self._upload_dir(upload_id)
        if not folder.is_dir():
            raise NotFoundError(f"upload {upload_id} of {self.uri(key)} does not exist")
        (folder / f"part-{number:05d}").write_bytes(body)
        return _etag(body)

    def complete_upload(self, key: str, upload_id: str, parts: builtins.list[dict[str, Any]]) -> None:
        folder = self._upload_dir(upload_id)
        if not folder.is_dir():
            raise NotFoundError(f"upload {upload_id} of {self.uri(key)} does not exist")
        staging = self.root / INTERNAL / f"tmp-{secrets.token_hex(8)}"
        with open(staging, "wb") as out:
            for part in sorted(parts, key=lambda p: int(p["PartNumber"])):
                piece = (folder / f"part-{int(part['PartNumber']):05d}").read_bytes()
                if _etag(piece) != part["ETag"]:
                    raise ConflictError(f"writing {self.uri(key)}: part {part['PartNumber']} does not match")
                out.write(piece)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, path)
        shutil.rmtree(folder, ignore_errors=True)

    def abort_upload(self, key: str, upload_id: str) -> None:
        shutil.rmtree(self._upload_dir(upload_id), ignore_errors=True)

    def open_uploads(self, prefix: str) -> builtins.list[tuple[str, str]]:
        base = self.root / INTERNAL / "uploads"
        out = []
        for folder in sorted(base.iterdir()) if base.is_dir() else []:
            with contextlib.suppress(OSError, ValueError):
                key = json.loads((folder / "upload.json").read_text())["key"]
                if key.startswith(prefix):
                    out.append((key, folder.name))
        return out
