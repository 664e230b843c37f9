"""Public links: an unguessable token to view (download) a file or folder, or to upload into a folder
(a "file request"), with an optional password, expiry and download limit.

Every link is a row of its node's workspace, so the workspace's owners always see and can revoke it
(GET /api/v1/workspaces/{id}/links/), and operators see all of them in the admin. Resolving a token
is files.access.link_get_for_token; the rules for creating links come from the link policy: the
operator's settings, tightened by the workspace's FilesPolicy.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import Workspace
from cloudstorage.errors import ServiceError
from files.access import (
    link_creator_may_edit,
    link_get_for_token,
    link_lock_live,
    permission_at_least,
    with_creator_access,
)
from files.activity import activity_record, author_of
from files.content import StoredContent
from files.models import FilesPolicy, FileVersion, Node, PublicLink
from files.names import name_clean, name_key, name_split, name_with_suffix
from files.versions import content_commit

# 24 random bytes: 192 bits, 32 URL-safe characters.
TOKEN_BYTES = 24
MAX_PASSWORD_LENGTH = 128
# Bounds of a link policy's numbers and of a link's download limit, for every caller (the API's
# serializers show them in the schema; the dashboard's form has only this check): each keeps the
# value storable (a 32-bit column, a date before year 9999) and sensible.
MAX_EXPIRY_DAYS = 3650
MAX_DOWNLOADS = 1_000_000


@dataclass(frozen=True)
class LinkPolicy:
    """The rules a new link must follow in one workspace (None: no default / no limit)."""

    default_expiry_days: int | None
    max_expiry_days: int | None
    password_required: bool
    default_max_downloads: int | None
    # What the operator imposes, so a workspace's form can say why a value is refused.
    operator_max_expiry_days: int | None
    operator_password_required: bool


def link_policy_get(*, workspace_id) -> LinkPolicy:
    """The effective policy: the workspace's own values where set, the operator's defaults otherwise;
    the stricter maximum expiry wins and an operator's password requirement cannot be dropped."""
    own = FilesPolicy.objects.filter(workspace_id=workspace_id).first() or FilesPolicy()
    operator_max = settings.CLOUDSTORAGE_LINK_MAX_EXPIRY_DAYS
    # MAX_EXPIRY_DAYS also caps values stored before link_policy_update checked it, so no stored
    # policy can make link creation overflow a date.
    maxima = [days for days in (own.link_max_expiry_days, operator_max) if days]
    max_days = min(*maxima, MAX_EXPIRY_DAYS) if maxima else None
    default_days = own.link_default_expiry_days or settings.CLOUDSTORAGE_LINK_DEFAULT_EXPIRY_DAYS
    if default_days:
        default_days = min(default_days, max_days or MAX_EXPIRY_DAYS)
    return LinkPolicy(
        default_expiry_days=default_days,
        max_expiry_days=max_days,
        password_required=own.link_password_required or settings.CLOUDSTORAGE_LINK_PASSWORD_REQUIRED,
        default_max_downloads=own.link_default_max_downloads or settings.CLOUDSTORAGE_LINK_DEFAULT_MAX_DOWNLOADS,
        operator_max_expiry_days=operator_max,
        operator_password_required=settings.CLOUDSTORAGE_LINK_PASSWORD_REQUIRED,
    )


def link_policy_update(
    *,
    actor,
    workspace: Workspace,
    default_expiry_days: int | None,
    max_expiry_days: int | None,
    password_required: bool,
    default_max_downloads: int | None,
) -> LinkPolicy:
    """Set a workspace's own link rules (its owners and admins; checked by files.access)."""
    for name, value, limit in (
        ("default_expiry_days", default_expiry_days, MAX_EXPIRY_DAYS),
        ("max_expiry_days", max_expiry_days, MAX_EXPIRY_DAYS),
        ("default_max_downloads", default_max_downloads, MAX_DOWNLOADS),
    ):
        if value is not None and not 1 <= value <= limit:
            raise ServiceError(
                code="invalid",
                message=f"{name} must be from 1 to {limit:,} (or empty).",
                status_code=400,
                details={"field": name, "min": 1, "max": limit},
            )
    operator_max = settings.CLOUDSTORAGE_LINK_MAX_EXPIRY_DAYS
    if operator_max and max_expiry_days and max_expiry_days > operator_max:
        raise ServiceError(
            code="invalid",
            message=f"The service allows links for at most {operator_max} days.",
            status_code=400,
            details={"operator_max_expiry_days": operator_max},
        )
    if default_expiry_days and max_expiry_days and default_expiry_days > max_expiry_days:
        raise ServiceError(
            code="invalid", message="The default expiry cannot be longer than the maximum.", status_code=400
        )
    with transaction.atomic():
        policy, _ = FilesPolicy.objects.select_for_update().get_or_create(workspace=workspace)
        policy.link_default_expiry_days = default_expiry_days
        policy.link_max_expiry_days = max_expiry_days
        policy.link_password_required = password_required
        policy.link_default_max_downloads = default_max_downloads
        policy.save(
            update_fields=[
                "link_default_expiry_days",
                "link_max_expiry_days",
                "link_password_required",
                "link_default_max_downloads",
            ]
        )
        activity_record(
            workspace_id=workspace.pk,
            actor=actor,
            verb="link_policy",
            details={
                "default_expiry_days": default_expiry_days,
                "max_expiry_days": max_expiry_days,
                "password_required": password_required,
                "default_max_downloads": default_max_downloads,
            },
        )
    return link_policy_get(workspace_id=workspace.pk)


def link_url(*, link: PublicLink) -> str:
    return settings.SITE_URL + reverse("public_link", args=[link.token])


def link_create(
    *,
    actor,
    node: Node,
    permission: str = PublicLink.Permission.VIEW,
    password: str | None = None,
    expires_at: datetime | None = None,
    max_downloads: int | None = None,
    now: datetime | None = None,
) -> PublicLink:
    """A new public link to ``node`` (from files.access with at least ``edit``), within the policy."""
    now = now or timezone.now()
    if not permission_at_least(getattr(node, "permission", None), "edit"):
        raise ServiceError(
            code="permission_denied", message="You need edit access to create a public link.", status_code=403
        )
    if permission not in PublicLink.Permission.values:
        raise ServiceError(code="invalid", message="permission must be view or upload.", status_code=400)
    if permission == PublicLink.Permission.UPLOAD and not node.is_folder:
        raise ServiceError(
            code="not_a_folder", message="An upload link (file request) needs a folder.", status_code=400
        )
    policy = link_policy_get(workspace_id=node.workspace_id)
    if password is not None and len(password) > MAX_PASSWORD_LENGTH:
        raise ServiceError(
            code="invalid", message=f"A link password may be at most {MAX_PASSWORD_LENGTH} characters.", status_code=400
        )
    if policy.password_required and not password:
        raise ServiceError(
            code="link_password_required",
            message="Public links of this workspace need a password.",
            status_code=400,
        )
    if expires_at is None:
        days = policy.default_expiry_days or policy.max_expiry_days
        expires_at = now + timedelta(days=days) if days else None
    elif expires_at <= now:
        raise ServiceError(code="invalid", message="expires_at must be in the future.", status_code=400)
    elif policy.max_expiry_days and expires_at > now + timedelta(days=policy.max_expiry_days):
        raise ServiceError(
            code="link_expiry_too_long",
            message=f"Public links of this workspace may last at most {policy.max_expiry_days} days.",
            status_code=400,
            details={"max_expiry_days": policy.max_expiry_days},
        )
    if max_downloads is None:
        max_downloads = policy.default_max_downloads
    elif not 1 <= max_downloads <= MAX_DOWNLOADS:
        raise ServiceError(
            code="invalid", message=f"max_downloads must be from 1 to {MAX_DOWNLOADS:,}.", status_code=400
        )
    with transaction.atomic():
        link = PublicLink.objects.create(
            workspace_id=node.workspace_id,
            node=node,
            token=secrets.token_urlsafe(TOKEN_BYTES),
            permission=permission,
            password_hash=make_password(password) if password else "",
            expires_at=expires_at,
            max_downloads=max_downloads,
            created_by=author_of(actor),
            created_at=now,
        )
        link.creator_may_edit = True  # checked above
        activity_record(
            workspace_id=node.workspace_id,
            actor=actor,
            verb="link_create",
            node=node,
            details={
                "link": str(link.pk),
                "permission": permission,
                "password": bool(password),
                "expires_at": expires_at.isoformat() if expires_at else None,
                "max_downloads": max_downloads,
            },
        )
    return link


def link_revoke(*, actor, link: PublicLink) -> bool:
    """Revoke a link (``link`` from files.access.link_get_for_user); its token answers 410 from now on.
    False when it was already revoked (by an earlier or a concurrent call): nothing is done, and the
    API answers 404 as for a share deleted twice."""
    with transaction.atomic():
        done = PublicLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if done:
            activity_record(
                workspace_id=link.workspace_id,
                actor=actor,
                verb="link_revoke",
                node=link.node,
                details={"link": str(link.pk)},
            )
    link.refresh_from_db(fields=["revoked_at"])
    return bool(done)


def link_state(*, link: PublicLink, now: datetime | None = None) -> str:
    """active, revoked, expired, exhausted, in_trash (works again after a restore), or
    creator_lost_access (its creator may no longer edit its node; works again if they may)."""
    now = now or timezone.now()
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at is not None and link.expires_at <= now:
        return "expired"
    if link.max_downloads is not None and link.download_count >= link.max_downloads:
        return "exhausted"
    if link.node.trashed_in_id is not None:
        return "in_trash"
    if not link_creator_may_edit(link=link):
        return "creator_lost_access"
    return "active"


def links_for_node(*, node: Node) -> QuerySet[PublicLink]:
    links = PublicLink.objects.filter(node=node).select_related("node", "created_by")
    return with_creator_access(links).order_by("-created_at", "-pk")


def links_for_workspace(*, workspace: Workspace, include_revoked: bool = False) -> QuerySet[PublicLink]:
    """The inventory: every link of the workspace (revoked ones on request), trashed nodes included,
    and links whose creator lost access (so its managers can still see and revoke them)."""
    links = with_creator_access(PublicLink.objects.filter(workspace=workspace).select_related("node", "created_by"))
    if not include_revoked:
        links = links.filter(revoked_at__isnull=True)
    return links.order_by("-created_at", "-pk")


# --- Using a link (no login) ---------------------------------------------------------------------


def _attempt_keys(link: PublicLink, client: str) -> tuple[str, str]:
    return f"linkpw:{link.pk}:{client}", f"linkpw:{link.pk}"


def link_password_check(*, link: PublicLink, password: str, client: str) -> bool:
    """True when ``password`` opens the link. Wrong guesses are counted per link and client address
    (and, more loosely, per link over all addresses); past the limit every guess, right or wrong,
    is refused with 429 until the window ends, so a password cannot be brute-forced."""
    window = settings.CLOUDSTORAGE_LINK_PASSWORD_WINDOW
    limit = settings.CLOUDSTORAGE_LINK_PASSWORD_ATTEMPTS
    per_client, per_link = _attempt_keys(link, client)
    if (cache.get(per_client) or 0) >= limit or (cache.get(per_link) or 0) >= limit * 20:
        raise ServiceError(
            code="throttled",
            message="Too many wrong passwords for this link. Try again later.",
            status_code=429,
            details={"retry_after": window},
        )
    if link.password_hash and check_password(password or "", link.password_hash):
        return True
    for key in (per_client, per_link):
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=window)
    return False


def link_unlock_proof(*, link: PublicLink) -> str:
    """What a browser session keeps after the right password; changes if the password does."""
    return salted_hmac("files.links.unlock", f"{link.pk}:{link.password_hash}").hexdigest()


def link_count_download(*, link: PublicLink, what: Node, now: datetime | None = None) -> None:
    """Count one download against the limit, atomically (two racing downloads of a link with one
    left cannot both pass), and record the access. Raises ServiceError 410 when none is left."""
    now = now or timezone.now()
    counted = (
        PublicLink.objects.filter(pk=link.pk, revoked_at__isnull=True)
        .filter(Q(max_downloads__isnull=True) | Q(download_count__lt=F("max_downloads")))
        .update(download_count=F("download_count") + 1, last_accessed_at=now)
    )
    if not counted:
        raise ServiceError(code="link_gone", message="This link has no downloads left.", status_code=410)
    activity_record(
        workspace_id=link.workspace_id,
        actor=None,
        verb="link_download",
        node=what,
        details={"link": str(link.pk), "zip": what.is_folder},
    )


# A page opened again within this time is not logged again (reloads would flood the activity log).
ACCESS_LOG_INTERVAL = timedelta(hours=1)


def link_touch(*, link: PublicLink, now: datetime | None = None) -> None:
    """Remember that the link's page was opened (the inventory's "last access"), and log it in the
    activity when it had not been opened for a while."""
    now = now or timezone.now()
    quiet = PublicLink.objects.filter(pk=link.pk).filter(
        Q(last_accessed_at__isnull=True) | Q(last_accessed_at__lt=now - ACCESS_LOG_INTERVAL)
    )
    if quiet.update(last_accessed_at=now):
        activity_record(
            workspace_id=link.workspace_id,
            actor=None,
            verb="link_access",
            node=link.node,
            details={"link": str(link.pk)},
        )
    else:
        PublicLink.objects.filter(pk=link.pk).update(last_accessed_at=now)


# Longer than any " (n)" an upload link will ever need: it sets how far a long stem may be cut.
_LONGEST_SUFFIX = " (9999999999)"


def _free_upload_name(*, folder: Node, name: str) -> str:
    """``name``, or the first of ``name (2)``, ``name (3)``… that no live sibling has (names are
    compared case-insensitively): one query, however many are taken. Asking for each candidate in
    turn cost a query per taken name, so every further file sent under a popular name got slower.

    Every candidate's stem is the name's own stem, cut by name_with_suffix only as far as its suffix
    needs, so each candidate's key starts with the key of the stem cut for the longest suffix."""
    _, ext = name_split(name)
    shortest = name_with_suffix(name, _LONGEST_SUFFIX)
    stem = shortest[: len(shortest) - len(_LONGEST_SUFFIX) - len(ext)]
    taken = set(
        Node.objects.filter(parent=folder, trashed_in__isnull=True, name_key__startswith=name_key(stem)).values_list(
            "name_key", flat=True
        )
    )
    candidate, attempt = name, 1
    while name_key(candidate) in taken:
        attempt += 1
        candidate = name_with_suffix(name, f" ({attempt})")
    return candidate


UPLOAD_WINDOW = timedelta(hours=1)


def link_upload_reserve(*, link: PublicLink, count: int, now: datetime | None = None) -> None:
    """Count ``count`` files about to be received through an upload link against its
    CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_HOUR, or refuse them all: 429 when they do not fit in what
    is left of this hour, 400 too_many_files when they are more than any hour takes.

    Anyone with the link may send, and quota bounds only bytes (empty files cost none), so without
    this an anonymous sender could fill a folder with rows without end. The window starts with its
    first file and lasts an hour; one conditional UPDATE decides, so racing requests cannot both
    take the last places. Places taken by files then refused (quota) are not given back."""
    now = now or timezone.now()
    limit = settings.CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_HOUR
    if count > limit:
        # No hour ever takes them all: waiting would not help, sending fewer at once would.
        raise ServiceError(
            code="too_many_files",
            message=f"At most {limit} files can be sent at once; send the rest separately.",
            status_code=400,
            details={"max_files": limit},
        )
    fresh = Q(uploads_window_start__isnull=True) | Q(uploads_window_start__lte=now - UPLOAD_WINDOW)
    taken = (
        PublicLink.objects.filter(pk=link.pk)
        .filter(fresh | Q(uploads_in_window__lte=limit - count))
        .update(
            uploads_in_window=Case(When(fresh, then=Value(count)), default=F("uploads_in_window") + count),
            uploads_window_start=Case(When(fresh, then=Value(now)), default=F("uploads_window_start")),
        )
    )
    if not taken:
        raise ServiceError(
            code="throttled",
            message=f"This file request takes at most {limit} files an hour; try again later.",
            status_code=429,
            details={"max_files_per_hour": limit},
        )


def link_upload(*, link: PublicLink, name: str, content: StoredContent, creator_checked: bool = False) -> FileVersion:
    """Commit one file stored through an upload link into the link's folder (the content is
    discarded on refusal). Never touches an existing file (the sender cannot see the folder): a
    taken name gets `` (2)``, `` (3)``… appended.

    ``link`` was read when the request began, and the body may have taken minutes since: the link
    is read again, its row locked, in the transaction that makes the file visible, so one revoked
    or expired meanwhile takes nothing (files.access.LinkGone). The whole link, its creator's
    access too, is decided again at a request's first commit; ``creator_checked``: a commit of this
    request already did so, and only the link's own row is read again (files.access.link_lock_live),
    so a request of many files does not pay the creator's role and shares for each one."""
    try:
        if link.permission != PublicLink.Permission.UPLOAD:
            raise ServiceError(code="permission_denied", message="This link does not take uploads.", status_code=403)
        folder = link.node
        name = name_clean(name)
    except BaseException:
        content.discard()
        raise
    version = content_commit(
        user=None,
        parent=folder,
        name=_free_upload_name(folder=folder, name=name),
        content=content,
        replace=False,
        guard=partial(link_lock_live, link=link)
        if creator_checked
        else partial(link_get_for_token, token=link.token, lock=True),
    )
    PublicLink.objects.filter(pk=link.pk).update(last_accessed_at=timezone.now())
    activity_record(
        workspace_id=link.workspace_id,
        actor=None,
        verb="link_upload",
        node=version.node,
        details={"link": str(link.pk), "size": version.size},
    )
    return version


PUBLIC_LISTING_LIMIT = 1000


def link_folder_listing(*, link: PublicLink, folder: Node) -> list[Node]:
    """The live children of a folder reached through ``link`` (folders first, then by name)."""
    return list(
        Node.objects.filter(parent=folder, trashed_in__isnull=True)
        .order_by("-kind", "name_key")[:PUBLIC_LISTING_LIMIT]
        .only("pk", "kind", "name", "size", "mime_type", "modified_at", "parent_id")
    )
