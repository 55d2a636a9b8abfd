"""The storage batch scoring reads and writes: any modelops.adapters.objectstore.ObjectStore (S3, or a local directory)."""

from __future__ import annotations

from typing import Any

from ..adapters.objectstore import S3ObjectStore, open_bucket
from ..ports import ObjectStore
from ..ports import StoredObject as ObjectInfo

__all__ = ["ObjectInfo", "ObjectStore", "Store", "open_store"]

Store = S3ObjectStore  # an S3 bucket's store: Store(bucket, s3=client)


def open_store(bucket: str, s3: Any = None) -> ObjectStore:
    """The batch data store: an S3 bucket name, or a local directory (a path or file:// URI)."""
    return open_bucket(bucket, s3)
