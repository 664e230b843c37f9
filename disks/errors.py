"""The chunk store's errors, in a module of their own so both the writer (disks/store.py) and the
reader (disks/reading.py) can raise them without importing each other (and disks/writing.py too). Import them from
disks.store, the store's public interface."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error of the chunk store."""


class StorageFullError(StoreError):
    """No disk (or not enough disks) with room: the write was refused and nothing of it is visible."""


class ChunkLostError(StoreError):
    """No good copy of a needed chunk is left."""


class SizeLimitExceeded(StoreError):
    """More bytes arrived than the caller's size limit allows."""


class ManifestGone(StoreError):
    """The manifest was released meanwhile (a version dropped while it was being copied or restored)."""
