"""Where a disk's bytes live: a local folder or an S3-compatible bucket/prefix, behind one interface.

The chunk store only ever calls ``put`` (durable when it returns), ``get``, ``delete``, ``keys``,
``listing``/``modified_at`` (the sweep) and ``probe``; everything about paths and buckets stays in this module.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from disks.models import Disk

logger = logging.getLogger(__name__)

TEMP_DIR = ".tmp"
# Every disk's root holds this object with the disk's id, written when it is attached (see
# disks/identity.py): an empty mount point, another disk mounted in its place or a folder recreated
# by hand lacks it or names another disk.
MARKER = ".cloudstorage-disk"
# Beside it, the id of the installation that wrote it (disks.crypto.installation_id), in an object of
# its own so that the marker stays the disk id alone, as every version reads it. Markers written
# before it have none.
INSTALLATION_MARKER = f"{MARKER}.installation"
# How long a local disk's marker, once read, is trusted by writes in this process (seconds).
MARKER_TTL = 2.0


class BackendError(Exception):
    """The disk could not do what was asked (unreachable, I/O error, full)."""


class ObjectMissing(BackendError):
    """The disk answered, and the object is not there."""


class DiskFullError(BackendError):
    """The disk answers, and has no room for the write (ENOSPC, or a quota): it can still be read."""


NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskIdentityError(BackendError):
    """The disk answers, but it is not the disk recorded: its identity marker is missing or names
    another disk."""


# S3's own error codes, safe to repeat; anything else an endpoint answers is not echoed.
S3_ERROR_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "NoSuchBucket",
        "PermanentRedirect",
        "QuotaExceeded",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "SignatureDoesNotMatch",
        "SlowDown",
        "InternalError",
        "AuthorizationHeaderMalformed",
    }
)


def s3_error_summary(exc: Exception) -> str:
    """What went wrong with an S3 request, in words of our own."""
    from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in S3_ERROR_CODES:
            return f"the endpoint refused the request ({code})"
        return "the endpoint did not answer as an S3 service"
    if isinstance(exc, EndpointConnectionError | ReadTimeoutError):
        return "cannot reach the endpoint"
    return f"the request failed ({exc.__class__.__name__})"


class Backend:
    def put(self, key: str, data: bytes) -> None:
        raise BackendError("abstract backend")

    def get(self, key: str) -> bytes:
        raise BackendError("abstract backend")

    def get_into(self, key: str, buffer: bytearray) -> memoryview:
        """The object's bytes, read into ``buffer`` (grown when too small) where the backend can, so a
        reader reuses one buffer instead of allocating fresh pages per object; the view is valid
        until the buffer is used again and must be released before that."""
        return memoryview(self.get(key))

    def delete(self, key: str) -> None:
        raise BackendError("abstract backend")

    def keys(self, prefix: str = "") -> Iterator[str]:
        raise BackendError("abstract backend")

    def listing(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        """Every object key under ``prefix`` with its last modification time (UTC)."""
        raise BackendError("abstract backend")

    def modified_at(self, key: str) -> datetime | None:
        """When the object was last written (UTC), or None when it is not there."""
        raise BackendError("abstract backend")

    def temporaries_remove(self, *, older_than: float) -> int:
        """Delete the half-written objects of writers that died, older than ``older_than`` seconds
        (a put in progress keeps its temporary fresh); how many were removed."""
        return 0  # S3 never shows a half-written object

    def marker_read(self) -> str | None:
        """The disk id in the identity marker, or None when there is no marker."""
        try:
            return bytes(self.get(MARKER)).decode("ascii", "replace").strip()
        except ObjectMissing:
            return None

    def marker_write(self, disk_id) -> None:
        self.put(MARKER, f"{disk_id}\n".encode())

    def installation_read(self) -> str | None:
        """The installation id beside the identity marker, or None when there is none."""
        try:
            return bytes(self.get(INSTALLATION_MARKER)).decode("ascii", "replace").strip()
        except ObjectMissing:
            return None

    def installation_write(self, installation: str) -> None:
        self.put(INSTALLATION_MARKER, f"{installation}\n".encode())

    def identity_check(self, disk_id) -> None:
        """DiskIdentityError unless the marker names ``disk_id``."""
        found = self.marker_read()
        if found is None:
            raise DiskIdentityError(f"no {MARKER} marker: the disk is not mounted, or this is another folder")
        if found != str(disk_id):
            raise DiskIdentityError(f"{MARKER} names disk {found}: another disk is mounted in its place")

    def probe(self) -> None:
        """Write, read back and delete a small object; raise BackendError when any step fails."""
        key = f".probe/{secrets.token_hex(8)}"
        payload = secrets.token_bytes(64)
        self.put(key, payload)
        try:
            if self.get(key) != payload:
                raise BackendError("a probe read back different bytes than were written")
        finally:
            self.delete(key)


# (root, disk id) -> time.monotonic() of the last good marker check, shared by this process's threads.
_marker_seen: dict[tuple[str, str], float] = {}


# Folders of local disks this process has seen synced in their parents (_folders_make), as strings
# (~0.3 MB when full). Bounded: once full it starts again, and a folder is then synced once more, an
# fsync of a clean directory (~0.05 ms).
_SYNCED_FOLDERS_MAX = 2048
_synced_folders: set[str] = set()


def _folder_sync(folder: Path) -> None:
    """fsync a directory: what makes the names of the entries made in it durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackend(Backend):
    """A folder; objects are files written to a temporary name, fsync'd, then renamed into place.

    With ``disk_id``, writes check the identity marker first: read at most once per MARKER_TTL per
    disk and process, so a write costs no extra system call. A disk swapped underneath takes at
    most MARKER_TTL seconds of writes before they are refused; its probe then fails it, and every
    copy on it (those too) is re-made from the other copies a write always has."""

    def __init__(self, root: str | Path, *, disk_id=None):
        self.root = Path(root)
        self.disk_id = disk_id

    def _identity_recent(self) -> None:
        entry = (str(self.root), str(self.disk_id))
        now = time.monotonic()
        if now - _marker_seen.get(entry, -MARKER_TTL - 1.0) <= MARKER_TTL:
            return
        _marker_seen.pop(entry, None)
        self.identity_check(self.disk_id)
        _marker_seen[entry] = now

    def marker_read(self) -> str | None:
        if not self.root.is_dir():
            raise BackendError(f"{self.root} is not there")  # gone, not swapped: the damped probe decides
        return super().marker_read()

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise BackendError(f"refusing unsafe key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        # A missing root means an unmounted or lost disk: never recreate it, or the bytes would land
        # on whatever filesystem holds the mount point.
        if not self.root.is_dir():
            raise BackendError(f"{self.root} is not there")
        if self.disk_id is not None and key != MARKER:
            self._identity_recent()
        path = self._path(key)
        # Temporaries live in one folder of the same filesystem (the rename stays atomic), so the
        # leftovers of a process killed mid-write are found without walking the whole disk.
        tmp = self.root / TEMP_DIR / f"{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            tmp.parent.mkdir(exist_ok=True)
            self._folders_make(path.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _folder_sync(path.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in NO_SPACE:
                raise DiskFullError(f"{self.root}: {exc}") from exc
            raise BackendError(f"{self.root}: {exc}") from exc

    def _folders_make(self, folder: Path) -> None:
        """Create ``folder`` and what is missing above it (below the root), each folder's name made
        durable by syncing its parent: POSIX keeps a new directory's entry only through its parent's
        fsync, and a copy is acknowledged as durable. Existing folders count as durable only once
        this process has synced them: one another thread (or a process that died) has just made may
        not be yet, so no copy is answered for before its whole path is."""
        if str(folder) in _synced_folders:
            return
        missing = []
        while folder != self.root and str(folder) not in _synced_folders:
            missing.append(folder)
            folder = folder.parent
        for new in reversed(missing):
            new.mkdir(exist_ok=True)
            _folder_sync(new.parent)
            if len(_synced_folders) >= _SYNCED_FOLDERS_MAX:
                _synced_folders.clear()
            _synced_folders.add(str(new))

    def _missing(self, key: str) -> BackendError:
        """A file not found is a missing copy only when the disk itself is there: a web node that
        does not see the disk (not mounted on this host) must not mark every copy on it bad."""
        if not self.root.is_dir():
            return BackendError(f"{self.root} is not there on this node")
        return ObjectMissing(key)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise self._missing(key) from exc
        except OSError as exc:
            raise BackendError(f"{self.root}: {exc}") from exc

    def get_into(self, key: str, buffer: bytearray) -> memoryview:
        try:
            with open(self._path(key), "rb", buffering=0) as file:
                size = os.fstat(file.fileno()).st_size
                if len(buffer) < size:
                    buffer.extend(bytes(size - len(buffer)))
                view = memoryview(buffer)[:size]
                done = 0
                while done < size:
                    got = file.readinto(view[done:])
                    if not got:
                        break  # truncated meanwhile: the short read fails authentication
                    done += got
                return view[:done]
        except FileNotFoundError as exc:
            raise self._missing(key) from exc
        except OSError as exc:
            raise BackendError(f"{self.root}: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise BackendError(f"{self.root}: {exc}") from exc

    def keys(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.endswith(".tmp"):
                    continue
                yield str(Path(dirpath, name).relative_to(self.root))

    def listing(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        for key in self.keys(prefix):
            modified = self.modified_at(key)
            if modified is not None:  # deleted while we walked
                yield key, modified

    def modified_at(self, key: str) -> datetime | None:
        try:
            return datetime.fromtimestamp(self._path(key).stat().st_mtime, tz=UTC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BackendError(f"{self.root}: {exc}") from exc

    def probe(self) -> None:
        if not self.root.is_dir():
            raise BackendError(f"{self.root} is not a folder")
        super().probe()

    def temporaries_remove(self, *, older_than: float) -> int:
        folder = self.root / TEMP_DIR
        if not folder.is_dir():
            return 0
        cutoff = time.time() - older_than
        removed = 0
        try:
            for entry in os.scandir(folder):
                if entry.name.endswith(".tmp") and entry.stat().st_mtime <= cutoff:
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
        except OSError as exc:
            raise BackendError(f"{self.root}: {exc}") from exc
        return removed


class S3Backend(Backend):
    """A bucket (and optional prefix) on any S3-compatible service, through django-storages' S3Storage."""

    def __init__(self, disk: Disk):
        from storages.backends.s3 import S3Storage

        options = {
            "bucket_name": disk.s3_bucket,
            "location": disk.s3_prefix.strip("/"),
            "endpoint_url": disk.s3_endpoint_url or None,
            "region_name": disk.s3_region or None,
            "access_key": disk.s3_access_key or None,
            "secret_key": disk.s3_secret_key or None,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
        }
        self.storage = S3Storage(**options)
        self.prefix = options["location"]

    def _error(self, exc: Exception) -> BackendError:
        """A BackendError naming the bucket and what went wrong, never with text of the remote answer:
        operators see it in the admin, and an endpoint's body is none of their business (it could be
        any service's page). The full exception goes to the log."""
        logger.warning("s3://%s: %s", self.storage.bucket_name, exc)
        return BackendError(f"s3://{self.storage.bucket_name}: {s3_error_summary(exc)}")

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _object(self, key: str):
        # storage.connection is a per-thread boto3 resource (boto3 resources are not thread-safe).
        return self.storage.connection.Object(self.storage.bucket_name, self._name(key))

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        # PutObject returns only once S3 has stored the object durably.
        try:
            self._object(key).put(Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc) from exc

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._object(key).get()["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise ObjectMissing(key) from exc
            raise self._error(exc) from exc
        except BotoCoreError as exc:
            raise self._error(exc) from exc

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._object(key).delete()
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc) from exc

    def keys(self, prefix: str = "") -> Iterator[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._name(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        try:
            for obj in self.storage.connection.Bucket(self.storage.bucket_name).objects.filter(Prefix=full):
                yield obj.key[len(self.prefix) + 1 :] if self.prefix else obj.key
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc) from exc

    def listing(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._name(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        skip = len(self.prefix) + 1 if self.prefix else 0
        client = self.storage.connection.meta.client
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.storage.bucket_name, Prefix=full):
                for obj in page.get("Contents", []):
                    yield obj["Key"][skip:], obj["LastModified"]
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc) from exc

    def modified_at(self, key: str) -> datetime | None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.storage.connection.meta.client
        try:
            return client.head_object(Bucket=self.storage.bucket_name, Key=self._name(key))["LastModified"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise self._error(exc) from exc
        except BotoCoreError as exc:
            raise self._error(exc) from exc


@lru_cache(maxsize=1)
def _gcs_errors() -> tuple[type[BaseException], ...]:
    """What a GCS call raises when the service, the network, the credentials or the transfer fails:
    besides google.api_core's errors and OSError (requests' errors are OSErrors), google.auth's
    (a token refresh that cannot reach Google: TransportError, RefreshError) and the download's own
    (a transfer whose checksum does not match: DataCorruption; an unexpected status:
    InvalidResponse), which are neither. Each is the disk failing (BackendError), not the copy."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError
    from google.cloud.storage import exceptions as storage_errors

    errors: list[type[BaseException]] = [
        GoogleAPIError,
        GoogleAuthError,
        OSError,
        storage_errors.DataCorruption,
        storage_errors.InvalidResponse,
    ]
    try:  # google-resumable-media, where installed, is their base class (and what older releases raise)
        from google.resumable_media import common as media
    except ImportError:
        pass
    else:
        errors += [media.DataCorruption, media.InvalidResponse]
    return tuple(errors)


class GCSBackend(Backend):
    """A Google Cloud Storage bucket (and optional prefix) through google-cloud-storage.

    A GCS disk keeps its location in the S3 columns: bucket, prefix, and an endpoint only for an
    emulator or a compatible service (empty: Google's). Its secret is a service account's JSON key
    (sealed like an S3 secret); without one, Google's default credentials are used, or none at all
    with an explicit endpoint (an emulator)."""

    def __init__(self, disk: Disk):
        try:
            self._connect(disk)
        except _gcs_errors() as exc:
            # No usable credentials (google.auth's DefaultCredentialsError) is the disk's problem too.
            logger.warning("gs://%s: %s", disk.s3_bucket, exc)
            raise BackendError(f"gs://{disk.s3_bucket}: {exc.__class__.__name__}") from exc

    def _connect(self, disk: Disk) -> None:
        import json

        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        options = {}
        if disk.s3_endpoint_url:
            options["client_options"] = {"api_endpoint": disk.s3_endpoint_url}
        if disk.s3_secret_key:
            from google.oauth2 import service_account

            info = json.loads(disk.s3_secret_key)
            client = storage.Client(
                project=info.get("project_id"),
                credentials=service_account.Credentials.from_service_account_info(info),
                **options,
            )
        elif disk.s3_endpoint_url:
            client = storage.Client(project="local", credentials=AnonymousCredentials(), **options)
        else:
            client = storage.Client(**options)
        self.bucket = client.bucket(disk.s3_bucket)
        self.prefix = disk.s3_prefix.strip("/")

    def _error(self, exc: Exception) -> BackendError:
        # As for S3: the remote answer's text goes to the log only.
        logger.warning("gs://%s: %s", self.bucket.name, exc)
        return BackendError(f"gs://{self.bucket.name}: {exc.__class__.__name__}")

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        try:
            self.bucket.blob(self._name(key)).upload_from_string(bytes(data))
        except _gcs_errors() as exc:
            raise self._error(exc) from exc

    def get(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self.bucket.blob(self._name(key)).download_as_bytes()
        except NotFound as exc:
            raise ObjectMissing(key) from exc
        except _gcs_errors() as exc:
            raise self._error(exc) from exc

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.blob(self._name(key)).delete()
        except NotFound:
            pass
        except _gcs_errors() as exc:
            raise self._error(exc) from exc

    def listing(self, prefix: str = "") -> Iterator[tuple[str, datetime]]:
        full = self._name(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        skip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for blob in self.bucket.list_blobs(prefix=full):
                yield blob.name[skip:], blob.updated
        except _gcs_errors() as exc:
            raise self._error(exc) from exc

    def keys(self, prefix: str = "") -> Iterator[str]:
        for key, _modified in self.listing(prefix):
            yield key

    def modified_at(self, key: str) -> datetime | None:
        try:
            blob = self.bucket.get_blob(self._name(key))
        except _gcs_errors() as exc:
            raise self._error(exc) from exc
        return blob.updated if blob is not None else None


@lru_cache(maxsize=64)
def _s3_backend(disk_id, bucket, prefix, endpoint, region, access_key, secret_key) -> S3Backend:
    disk = Disk(
        id=disk_id,
        backend=Disk.Backend.S3,
        s3_bucket=bucket,
        s3_prefix=prefix,
        s3_endpoint_url=endpoint,
        s3_region=region,
        s3_access_key=access_key,
        s3_secret_key=secret_key,
    )
    return S3Backend(disk)


def backend_for(disk: Disk) -> Backend:
    """The backend of a disk (S3 clients are cached per configuration: creating one is slow)."""
    if disk.backend == Disk.Backend.LOCAL:
        return LocalBackend(disk.path, disk_id=disk.pk if disk.marked_at else None)
    if disk.backend == Disk.Backend.GCS:
        return GCSBackend(disk)
    return _s3_backend(
        disk.id,
        disk.s3_bucket,
        disk.s3_prefix,
        disk.s3_endpoint_url,
        disk.s3_region,
        disk.s3_access_key,
        disk.s3_secret_key,
    )
