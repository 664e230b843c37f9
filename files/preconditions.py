"""Conditional writes (RFC 9110 §13): ``If-Match`` / ``If-None-Match`` on an upload, a new version
or a PATCH, so two editors never silently overwrite each other.

A file's entity tag is ``"<sha256 of its current content>"`` (what a download sends as ``ETag``); a
folder has no content and only matches ``*``. The services check a :class:`Precondition` twice: once
before the body is streamed (to refuse early) and again under the row lock of the commit, so a write
that raced another one since the first check is still refused, with nothing kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudstorage.errors import ServiceError

# The keys of a resumable upload's metadata that hold the creation request's conditions.
IF_MATCH_KEY = "if-match"
IF_NONE_MATCH_KEY = "if-none-match"


def etag_of(node) -> str:
    """The strong entity tag of a live node's current content (a folder's is empty)."""
    return f'"{node.sha256}"' if node.sha256 else ""


def _tags(header: str | None) -> frozenset[str] | None:
    if header is None or not header.strip():
        return None
    return frozenset(tag.strip() for tag in header.split(",") if tag.strip())


@dataclass(frozen=True)
class Precondition:
    """The parsed ``If-Match`` and ``If-None-Match`` of one request (None: header absent)."""

    if_match: frozenset[str] | None = None
    if_none_match: frozenset[str] | None = None

    @classmethod
    def parse(cls, if_match: str | None, if_none_match: str | None) -> Precondition | None:
        """From the two header values; None when neither is given (the write is unconditional)."""
        found = cls(if_match=_tags(if_match), if_none_match=_tags(if_none_match))
        return found if found.if_match is not None or found.if_none_match is not None else None

    @classmethod
    def from_headers(cls, meta: dict) -> Precondition | None:
        """From a WSGI environ / Django ``META``."""
        return cls.parse(meta.get("HTTP_IF_MATCH"), meta.get("HTTP_IF_NONE_MATCH"))

    @classmethod
    def from_metadata(cls, metadata: dict) -> Precondition | None:
        """From a resumable upload's stored metadata (see :meth:`to_metadata`)."""
        return cls.parse(metadata.get(IF_MATCH_KEY), metadata.get(IF_NONE_MATCH_KEY))

    def to_metadata(self) -> dict[str, str]:
        """Kept with a resumable upload, for the check at its completion (tags as the header sent them)."""
        kept = {}
        if self.if_match is not None:
            kept[IF_MATCH_KEY] = ", ".join(sorted(self.if_match))
        if self.if_none_match is not None:
            kept[IF_NONE_MATCH_KEY] = ", ".join(sorted(self.if_none_match))
        return kept

    def check(self, node) -> None:
        """Raise a 412 ServiceError unless the write may go ahead on ``node`` (None: no such item yet)."""
        current = etag_of(node) if node is not None else None
        if self.if_match is not None:
            # Strong comparison: a weak tag never matches, and nothing matches a missing item.
            if node is None or not ("*" in self.if_match or (current and current in self.if_match)):
                raise _changed(node, wanted="If-Match")
        if self.if_none_match is not None and node is not None:
            if "*" in self.if_none_match or (current and current in self.if_none_match):
                raise _changed(node, wanted="If-None-Match")


def precondition_check(precondition: Precondition | None, node) -> None:
    if precondition is not None:
        precondition.check(node)


def _changed(node, *, wanted: str) -> ServiceError:
    if node is None:
        return ServiceError(
            code="precondition_failed",
            message="The file does not exist (If-Match): it was moved, renamed or deleted meanwhile.",
            status_code=412,
            details={"header": wanted},
        )
    if wanted == "If-None-Match":
        message = f'An item named "{node.name}" already exists (If-None-Match).'
    else:
        message = (
            f'"{node.name}" changed since you read it (If-Match): it is now version {node.version}. '
            "Download it again, or keep both by uploading under another name."
        )
    details = {"header": wanted, "existing_id": str(node.pk), "current_etag": etag_of(node), "version": node.version}
    return ServiceError(code="precondition_failed", message=message, status_code=412, details=details)
