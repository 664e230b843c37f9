"""A handle on OpenSSL's libcrypto (the one CPython's hashlib and ssl modules are linked against),
for the few calls made through ctypes (disks/aead.py, disks/sha_state.py): a foreign call releases
the GIL, which cryptography's and hashlib's wrappers of the same functions do not always do."""

from __future__ import annotations

import ctypes
import ctypes.util


def libcrypto(*symbols: str) -> ctypes.CDLL | None:
    """A new handle (so each caller sets its own argtypes) that exports every one of ``symbols``,
    or None when no such library can be loaded here."""
    for name in ("libcrypto.so.3", ctypes.util.find_library("crypto")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if all(hasattr(lib, symbol) for symbol in symbols):
            return lib
    return None
