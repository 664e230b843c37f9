"""WsgiDAV's lock storage and dead-property manager, kept in the database so that every web process
(gunicorn runs several, possibly on several hosts) sees the same locks and properties.

WsgiDAV's own in-memory and shelve stores both work on a ``_dict``; :class:`DbMapping` is that dict
as rows of :class:`files.models.DavEntry` (pickled values: WsgiDAV's lock records hold bytes and
tuples, and only this server ever writes them).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, MutableMapping

from wsgidav.lock_man.lock_storage import LockStorageDict, normalize_lock_root
from wsgidav.prop_man.property_manager import PropertyManager

from files.models import DavEntry


class DbMapping(MutableMapping):
    """A dict whose items are the rows of one ``table`` of DavEntry."""

    def __init__(self, table: str):
        self.table = table

    def _rows(self):
        return DavEntry.objects.filter(table=self.table)

    def __getitem__(self, key: str):
        value = self._rows().filter(key=key).values_list("value", flat=True).first()
        if value is None:
            raise KeyError(key)
        return pickle.loads(value)  # noqa: S301 - written by this module only

    def __setitem__(self, key: str, value) -> None:
        DavEntry.objects.update_or_create(table=self.table, key=key, defaults={"value": pickle.dumps(value)})

    def __delitem__(self, key: str) -> None:
        if not self._rows().filter(key=key).delete()[0]:
            raise KeyError(key)

    def __contains__(self, key) -> bool:
        return self._rows().filter(key=key).exists()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._rows().values_list("key", flat=True)))

    def __len__(self) -> int:
        return self._rows().count()

    def items(self):
        return [(key, pickle.loads(value)) for key, value in self._rows().values_list("key", "value")]  # noqa: S301

    def items_under(self, key: str) -> list:
        """The items whose key continues ``key`` with "/": what lies below a path, filtered by the
        database instead of read (and unpickled) whole."""
        prefix = key.rstrip("/") + "/"
        rows = self._rows().filter(key__startswith=prefix).values_list("key", "value")
        return [(found, pickle.loads(value)) for found, value in rows]  # noqa: S301

    def clear(self) -> None:
        self._rows().delete()

    def sync(self) -> None:
        """Every write is already stored (shelve's API, called by WsgiDAV)."""


class DbLockStorage(LockStorageDict):
    def open(self):
        self._dict = DbMapping("lock")

    def close(self):
        self._dict = None

    def get_lock_list(self, path, *, include_root, include_children, token_only):
        """WsgiDAV's, with the locks below ``path`` read by their keys' prefix: its own reads (and
        unpickles) every lock of every tenant, for each DELETE, MOVE or depth-infinity check."""
        locks = []
        if include_root:
            locks = super().get_lock_list(path, include_root=True, include_children=False, token_only=token_only)
        if not include_children:
            return locks
        self._lock.acquire_read()
        try:
            for _key, tokens in self._dict.items_under(f"URL2TOKEN:{normalize_lock_root(path)}"):
                for token in tokens:
                    lock = self.get(token)  # None when expired (and then purged), as WsgiDAV's
                    if lock:
                        locks.append(lock["token"] if token_only else lock)
        finally:
            self._lock.release()
        return locks


class DbPropertyManager(PropertyManager):
    def _lazy_open(self):
        self._dict = DbMapping("prop")
        self._loaded = True
