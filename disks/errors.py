"""Errors of the chunk store (raised by disks/store.py and disks/writing.py)."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error of the chunk store."""


class StorageFullError(StoreError):
    """No disk (or not enough disks) with room: the write was refused and nothing of it is visible."""


class ChunkLostError(StoreError):
    """No good copy of a needed chunk is left."""


class SizeLimitExceeded(StoreError):
    """More bytes arrived than the caller's size limit allows."""
