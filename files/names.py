"""File and folder names: what is allowed, and the key that makes sibling names unique."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from cloudstorage.errors import ServiceError
from cloudstorage.text import has_control_characters

MAX_NAME_BYTES = 255


def _bad(message: str) -> ServiceError:
    return ServiceError(code="invalid_name", message=message, status_code=400)


def name_clean(name: object) -> str:
    """The name in Unicode NFC form, or a ServiceError saying what is wrong with it."""
    if not isinstance(name, str):
        raise _bad("A name must be a string.")
    name = unicodedata.normalize("NFC", name)
    if not name or not name.strip():
        raise _bad("A name may not be empty.")
    if name in {".", ".."}:
        raise _bad(f'"{name}" is not allowed as a name.')
    if "/" in name or "\\" in name:
        raise _bad("A name may not contain / or \\.")
    # U+2028/U+2029 stay allowed, as before: desktop systems allow them in file names, and a Subject
    # quoting a node name encodes them (RFC 2047) rather than breaking the line there.
    if has_control_characters(name, line_separators=False):
        raise _bad("A name may not contain NUL or other control characters.")
    if name != name.strip():
        raise _bad("A name may not start or end with a space.")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise _bad(f"A name may be at most {MAX_NAME_BYTES} bytes long (UTF-8).")
    return name


def name_key(name: str) -> str:
    """Case-insensitive identity of a name among its siblings (names are case-preserving)."""
    return unicodedata.normalize("NFC", name.casefold())[:255]


def name_split(name: str) -> tuple[str, str]:
    """``report.pdf`` → ``("report", ".pdf")``; ``.profile`` and ``README`` have no extension."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return name, ""
    return stem, "." + ext


def name_with_suffix(name: str, suffix: str) -> str:
    """``report.pdf`` + `` (restored)`` → ``report (restored).pdf``; folders have no extension."""
    stem, ext = name_split(name)
    candidate = f"{stem}{suffix}{ext}"
    while len(candidate.encode("utf-8")) > MAX_NAME_BYTES and stem:
        stem = stem[:-1]
        candidate = f"{stem}{suffix}{ext}"
    return candidate


def relative_path_split(relative_path: str) -> list[str]:
    """The folder names and the file name of an upload's relative path, each validated."""
    if not isinstance(relative_path, str):
        raise _bad("relative_path must be a string.")
    parts = [part for part in relative_path.replace("\\", "/").split("/") if part != ""]
    if not parts:
        raise _bad("relative_path is empty.")
    if len(parts) > 64:
        raise _bad("relative_path is nested too deeply (at most 64 levels).")
    return [name_clean(part) for part in parts]


# Here, not in the API's content module, so that WebDAV (loaded with the WSGI application, before a
# worker hides DRF's optional packages: gunicorn.conf.py) sends it without importing DRF.
def content_disposition(name: str, *, inline: bool = False) -> str:
    """RFC 6266: a plain-ASCII ``filename`` for old clients and the exact name as UTF-8 ``filename*``."""
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fallback = (
        "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%;' else "_" for ch in fallback).strip() or "download"
    )
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
