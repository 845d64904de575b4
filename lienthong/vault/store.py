"""Object stores behind the vault: a directory on disk (embedded default) and S3 through boto3.

Both store immutable objects under content-addressed keys (:func:`object_key`), so writing the same
bytes twice is a no-op and an object's key proves its content. Neither knows about results: the
index in the database decides which objects are live.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import os
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lienthong.vault.errors import ObjectMissing, VaultError
from lienthong.vault.settings import VaultSettings, get_vault_settings

OBJECT_PREFIX = "objects/sha256/"

log = logging.getLogger(__name__)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def object_key(digest: str) -> str:
    """``objects/sha256/ab/abcdef…``: the key of the object whose SHA-256 is ``digest``."""
    return f"{OBJECT_PREFIX}{digest[:2]}/{digest}"


def digest_of_key(key: str) -> str | None:
    if not key.startswith(OBJECT_PREFIX):
        return None
    return key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class Vault(ABC):
    """Immutable objects by key. ``put`` returns True when it created the object, False when the
    same key already held it (content-addressed keys make that the same bytes)."""

    kind: str = "abstract"

    @abstractmethod
    def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> bool: ...

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing one is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    @abstractmethod
    def presigned_url(self, key: str, expires_seconds: int) -> str:
        """A short-lived URL to read one object, never the store's credentials."""

    def put_content(
        self, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> tuple[str, str, bool]:
        """Store bytes under their content address: ``(key, sha256, created)``."""
        digest = sha256_hex(data)
        key = object_key(digest)
        return key, digest, self.put(key, data, content_type=content_type)

    def put_contents(
        self,
        objects: Sequence[tuple[bytes, str]],
        *,
        digests: Sequence[str] | None = None,
        created: builtins.list[str] | None = None,
    ) -> builtins.list[tuple[str, str, bool]]:
        """Store several objects under their content addresses, all at once: ``(key, sha256,
        created)`` each. ``digests``, when the caller already hashed the bytes, saves hashing them
        again. Each key this call creates is appended to ``created`` as soon as it exists, so that a
        failure half-way leaves the caller knowing what to delete. When this returns, every object
        is durable (a result's two objects are flushed, or sent, side by side rather than in turn)."""
        ds = list(digests) if digests is not None else [sha256_hex(data) for data, _ in objects]

        def put_one(i: int) -> tuple[str, str, bool]:
            data, content_type = objects[i]
            key = object_key(ds[i])
            new = self.put(key, data, content_type=content_type)
            if new and created is not None:
                created.append(key)
            return key, ds[i], new

        if len(objects) < 2:
            return [put_one(i) for i in range(len(objects))]
        with ThreadPoolExecutor(max_workers=len(objects), thread_name_prefix="vault-put") as pool:
            futures = [pool.submit(put_one, i) for i in range(len(objects))]
        return [f.result() for f in futures]  # every put has ended: a failure is raised here


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class FileVault(Vault):
    """A directory. Each object is written whole under a temporary name, fsynced, then linked to its
    key (a reader never sees a partial object) and its directory fsynced. An object found already at
    its key is read back and compared, so that "exists" means "complete"; a content-addressed object
    left incomplete by a crash is rewritten."""

    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise VaultError(f"object key {key!r} is not a relative path inside the vault")
        return self.root / key

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> bool:
        path = self._path(key)
        self._make_dirs(path.parent)
        for _attempt in range(3):
            if self._holds(key, path, data):
                return False
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                _write_all(fd, data)
                os.fsync(fd)
                # link() refuses an existing name: of two concurrent writers exactly one creates it.
                os.link(tmp, path)
            except FileExistsError:
                continue  # a concurrent writer linked it first: check theirs
            finally:
                os.close(fd)
                os.unlink(tmp)
            _fsync_dir(path.parent)
            return True
        raise VaultError(f"object {key} keeps appearing and vanishing while it is written")

    def _make_dirs(self, d: Path) -> None:
        """Create ``d`` and its missing parents, each new entry made durable in its parent."""
        if d.is_dir():
            return
        self._make_dirs(d.parent)
        try:
            os.mkdir(d)
        except FileExistsError:
            return
        _fsync_dir(d.parent)

    def _holds(self, key: str, path: Path, data: bytes) -> bool:
        """True when ``path`` already holds the object. A content-addressed object whose bytes are
        not its content (a crash cut its write short) is replaced whole."""
        try:
            held = path.read_bytes()
        except FileNotFoundError:
            return False
        if held == data or digest_of_key(key) is None:
            _fsync_dir(path.parent)  # its writer may not have made the name durable yet
            return True
        log.warning("vault object %s did not hold its content (interrupted write?): rewritten", key)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            _write_all(fd, data)
            os.fsync(fd)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        _fsync_dir(path.parent)
        return True

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(
                f"no object {key} in {self.root}",
                message_vi="Không tìm thấy tệp trong kho kết quả.",
            ) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    st = full.stat()
                except FileNotFoundError:
                    continue
                yield ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        # A local directory has no URL signing: the embedded default hands out the file's URI.
        return self._path(key).resolve().as_uri()


class S3Vault(Vault):
    """An S3-compatible bucket. Server-side encryption is requested on every put; when the bucket
    has object lock enabled, each object gets a retention period."""

    kind = "s3"

    def __init__(self, settings: VaultSettings, client: Any = None) -> None:
        import boto3
        from botocore.config import Config

        self.settings = settings
        self.bucket = settings.s3_bucket
        if client is None:
            secret = settings.s3_secret_access_key
            client = boto3.client(
                "s3",
                endpoint_url=settings.s3_endpoint_url,
                region_name=settings.s3_region,
                aws_access_key_id=settings.s3_access_key_id,
                aws_secret_access_key=secret.get_secret_value() if secret else None,
                config=Config(
                    retries={"max_attempts": 5, "mode": "standard"},
                    signature_version="s3v4",
                    max_pool_connections=32,
                    s3={"addressing_style": "path"},
                ),
            )
        self.client = client
        self._lock = threading.Lock()
        self._object_lock: bool | None = None
        self._conditional_put: bool | None = None
        if settings.s3_create_bucket:
            self.ensure_bucket()

    # --- bucket -------------------------------------------------------------------------------

    def ensure_bucket(self, *, object_lock: bool = False) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.settings.s3_region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.s3_region}
        if object_lock:
            kwargs["ObjectLockEnabledForBucket"] = True
        self.client.create_bucket(**kwargs)

    @property
    def object_lock_enabled(self) -> bool:
        if self._object_lock is None:
            from botocore.exceptions import ClientError

            try:
                cfg = self.client.get_object_lock_configuration(Bucket=self.bucket)
                enabled = (
                    cfg.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
                )
            except ClientError:
                enabled = False  # no configuration, or the store does not implement object lock
            self._object_lock = enabled
        return self._object_lock

    # --- objects ------------------------------------------------------------------------------

    def _put_args(self, key: str, data: bytes, content_type: str) -> dict[str, Any]:
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "ContentType": content_type,
        }
        if self.settings.s3_sse:
            args["ServerSideEncryption"] = self.settings.s3_sse
            if self.settings.s3_sse == "aws:kms" and self.settings.s3_kms_key_id:
                args["SSEKMSKeyId"] = self.settings.s3_kms_key_id
        if self.object_lock_enabled:
            args["ObjectLockMode"] = self.settings.object_lock_mode
            args["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(
                days=self.settings.object_lock_days
            )
        return args

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> bool:
        from botocore.exceptions import ClientError

        args = self._put_args(key, data, content_type)
        if self._conditional_put is False:
            if self.exists(key):
                return False
            self.client.put_object(**args)
            return True
        # One request: a conditional write (If-None-Match) refuses to replace an existing object.
        try:
            self.client.put_object(IfNoneMatch="*", **args)
            if self._conditional_put is None:
                self._conditional_put = True
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            if code in ("NotImplemented", "501", "InvalidArgument"):
                with self._lock:
                    self._conditional_put = False
                return self.put(key, data, content_type=content_type)
            raise

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return body
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ObjectMissing(
                    f"no object {key} in s3://{self.bucket}",
                    message_vi="Không tìm thấy tệp trong kho kết quả.",
                ) from None
            raise

    def delete(self, key: str) -> None:
        if not self.object_lock_enabled:
            self.client.delete_object(Bucket=self.bucket, Key=key)
            return
        # A locked bucket is versioned: remove every version (governance retention bypassed by a
        # principal allowed to; in compliance mode only a delete marker can be placed).
        from botocore.exceptions import ClientError

        pages = self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=key
        )
        for page in pages:
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if v["Key"] != key:
                    continue
                try:
                    self.client.delete_object(
                        Bucket=self.bucket,
                        Key=key,
                        VersionId=v["VersionId"],
                        BypassGovernanceRetention=True,
                    )
                except ClientError:
                    self.client.delete_object(Bucket=self.bucket, Key=key)
                    return

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], int(obj["Size"]), obj["LastModified"])

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=int(expires_seconds)
        )
        return url


def open_store(settings: VaultSettings | None = None) -> Vault:
    """The object store the settings name."""
    settings = settings or get_vault_settings()
    if settings.backend == "s3":
        return S3Vault(settings)
    return FileVault(settings.root)
