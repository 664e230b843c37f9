"""Writes for users, workspaces, memberships, invitations and API tokens."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, Invitation, InvitationMail, Membership, User, Workspace, token_digest
from cloudstorage.compiled import CompiledQuery
from cloudstorage.errors import ServiceError
from cloudstorage.text import has_control_characters, mail_subject
from files.models import Node

Role = Membership.Role
MANAGER_ROLES = (Role.OWNER, Role.ADMIN)


def _refuse(code: str, message: str, status_code: int = 400) -> ServiceError:
    return ServiceError(code=code, message=message, status_code=status_code)


def _workspace_create(*, owner: User, name: str, kind: str) -> Workspace:
    workspace = Workspace.objects.create(owner=owner, name=name, kind=kind)
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    Node.objects.create(workspace=workspace, parent=None, kind=Node.Kind.FOLDER, name="", created_by=owner)
    return workspace


def workspace_create_personal(*, user: User) -> Workspace:
    """The free 1 GB workspace every user gets; called inside the user's creating transaction."""
    return _workspace_create(owner=user, name="Personal", kind=Workspace.Kind.PERSONAL)


def workspace_name_clean(name: str) -> str:
    """The name without surrounding spaces, or a ServiceError saying what is wrong with it.

    Workspace names go into e-mail Subjects (invitations, billing), where a control character or a
    line separator would start a header line of its own."""
    name = (name or "").strip()
    if not name:
        raise _refuse("invalid", "A workspace needs a name.")
    if len(name) > 100:
        raise _refuse("invalid", "A workspace name has at most 100 characters.")
    if has_control_characters(name, line_separators=True):
        raise _refuse("invalid", "A workspace name may not contain line breaks, tabs or other control characters.")
    return name


def workspace_create_team(*, owner: User, name: str) -> Workspace:
    name = workspace_name_clean(name)
    with transaction.atomic():
        return _workspace_create(owner=owner, name=name, kind=Workspace.Kind.TEAM)


def workspace_rename(*, workspace: Workspace, actor_role: str, name: str) -> Workspace:
    if actor_role not in MANAGER_ROLES:
        raise _refuse("forbidden", "Only owners and admins can rename a workspace.", 403)
    workspace.name = workspace_name_clean(name)
    workspace.save(update_fields=["name"])
    return workspace


def _owner_count(workspace: Workspace) -> int:
    return Membership.objects.filter(workspace=workspace, role=Role.OWNER).count()


def _may_grant(*, inviter_role: str | None, role: str) -> bool:
    """Owners give any seat, admins any but owner; ``None`` is someone who is no longer a member."""
    return inviter_role == Role.OWNER or (inviter_role == Role.ADMIN and role != Role.OWNER)


def _invitations_withdraw(*, workspace: Workspace, inviter_id, inviter_role: str | None) -> None:
    """Delete the open invitations a member sent that their role (``None``: gone) can no longer
    give, so a removed or demoted manager leaves no link behind to walk back in with."""
    beyond = [role for role in Role.values if not _may_grant(inviter_role=inviter_role, role=role)]
    Invitation.objects.filter(
        workspace=workspace, invited_by_id=inviter_id, accepted_at__isnull=True, role__in=beyond
    ).delete()


def _invitation_mail_allow(*, workspace: Workspace, sender: User, email: str, now: datetime) -> None:
    """Record one invitation e-mail about to be sent, or refuse it: the same address from the same
    workspace again within CLOUDSTORAGE_INVITATION_RESEND_MINUTES (409; the open invitation's mail
    still works), or past the sender's CLOUDSTORAGE_INVITATIONS_PER_HOUR over all their workspaces
    (429). The mail carries a workspace name the sender chose to any address, so without these an
    account could flood an inbox or phish in bulk. Counted in the database, so every web node and
    every way of asking (API, dashboard) shares one count."""
    # The sender's row lock orders two racing invitations of one sender (SQLite serializes writers).
    User.objects.select_for_update().filter(pk=sender.pk).values_list("pk", flat=True).first()
    resend = timedelta(minutes=settings.CLOUDSTORAGE_INVITATION_RESEND_MINUTES)
    hour = timedelta(hours=1)
    InvitationMail.objects.filter(sent_by=sender, sent_at__lt=now - max(resend, hour)).delete()
    last = (
        InvitationMail.objects.filter(workspace=workspace, email=email, sent_at__gt=now - resend)
        .order_by("-sent_at")
        .values_list("sent_at", flat=True)
        .first()
    )
    if last is not None:
        wait = max(1, -(-int((last + resend - now).total_seconds()) // 60))
        raise ServiceError(
            code="invitation_pending",
            message=f"An invitation was e-mailed to {email} less than "
            f"{settings.CLOUDSTORAGE_INVITATION_RESEND_MINUTES} minutes ago; "
            f"it can be sent again in {wait} minute{'s' if wait != 1 else ''}.",
            status_code=409,
            details={"retry_after": int((last + resend - now).total_seconds()) + 1},
        )
    sent = InvitationMail.objects.filter(sent_by=sender, sent_at__gt=now - hour)
    limit = settings.CLOUDSTORAGE_INVITATIONS_PER_HOUR
    if sent.count() >= limit:
        oldest = sent.order_by("sent_at").values_list("sent_at", flat=True).first()
        raise ServiceError(
            code="throttled",
            message=f"You have sent {limit} invitations in the last hour, the most allowed; try again later.",
            status_code=429,
            details={"retry_after": int((oldest + hour - now).total_seconds()) + 1},
        )
    InvitationMail.objects.create(sent_by=sender, workspace=workspace, email=email, sent_at=now)


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str


def invitation_create(
    *, workspace: Workspace, inviter: User, inviter_role: str, email: str, role: str
) -> IssuedInvitation:
    """Invite an e-mail address to a team workspace and send the single-use link."""
    if workspace.kind != Workspace.Kind.TEAM:
        raise _refuse("invalid", "A personal workspace cannot have members; create a team workspace.")
    if inviter_role not in MANAGER_ROLES:
        raise _refuse("forbidden", "Only owners and admins can invite.", 403)
    if role not in Role.values:
        raise _refuse("invalid", f"Role must be one of {', '.join(Role.values)}.")
    if role == Role.OWNER and inviter_role != Role.OWNER:
        raise _refuse("forbidden", "Only an owner can invite another owner.", 403)
    email = User.objects.normalize_email((email or "").strip()).lower()
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    try:
        validate_email(email)
    except ValidationError:
        raise _refuse("invalid", "Enter a valid e-mail address.") from None
    if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
        raise _refuse("conflict", f"{email} is already a member.", 409)
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        _invitation_mail_allow(workspace=workspace, sender=inviter, email=email, now=now)
        # A new invitation to the same address replaces the open one (whose link stops working).
        Invitation.objects.filter(workspace=workspace, email=email, accepted_at__isnull=True).delete()
        invitation = Invitation.objects.create(
            workspace=workspace,
            email=email,
            role=role,
            token_hash=token_digest(token),
            invited_by=inviter,
            expires_at=now + timedelta(days=settings.CLOUDSTORAGE_INVITATION_DAYS),
        )
        link = settings.SITE_URL + reverse("invitation_accept", args=[token])
        context = {"invitation": invitation, "link": link, "inviter": inviter, "workspace": workspace}
        transaction.on_commit(
            lambda: send_mail(
                subject=mail_subject(
                    f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{inviter.email} invited you to {workspace.name}"
                ),
                message=render_to_string("emails/invitation.txt", context),
                from_email=None,
                recipient_list=[email],
            )
        )
    return IssuedInvitation(invitation=invitation, token=token)


def invitation_get_open(*, token: str) -> Invitation | None:
    invitation = (
        Invitation.objects.select_related("workspace", "invited_by").filter(token_hash=token_digest(token)).first()
    )
    if invitation is None or not invitation.is_open:
        return None
    return invitation


def invitation_accept(*, token: str, user: User) -> Membership:
    """Join the workspace; the link works once, before it expires, for the invited address."""
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("workspace")
            .filter(token_hash=token_digest(token))
            .first()
        )
        if invitation is None or not invitation.is_open:
            raise _refuse("invalid_invitation", "This invitation link is invalid, expired or already used.", 404)
        if invitation.email.lower() != user.email.lower():
            raise _refuse(
                "wrong_account",
                "This invitation was sent to another address; log in as that address to accept it.",
                403,
            )
        if Membership.objects.filter(workspace=invitation.workspace, user=user).exists():
            raise _refuse("conflict", "You are already a member of this workspace.", 409)
        # The inviter's role was checked when the link was made; a link sent before they were
        # removed or demoted must not give a seat they can no longer give. A plain read, not
        # select_for_update: membership_change_role updates the inviter's row and then deletes
        # their invitations, so locking that row after this invitation could deadlock with it.
        inviter_role = (
            Membership.objects.filter(workspace=invitation.workspace, user_id=invitation.invited_by_id)
            .values_list("role", flat=True)
            .first()
        )
        if not _may_grant(inviter_role=inviter_role, role=invitation.role):
            raise _refuse(
                "invalid_invitation",
                "This invitation is no longer valid: the person who sent it can no longer invite with this "
                "role. Ask an owner or admin of the workspace for a new one.",
                404,
            )
        membership = Membership.objects.create(workspace=invitation.workspace, user=user, role=invitation.role)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def invitation_revoke(*, invitation: Invitation, actor_role: str) -> None:
    if actor_role not in MANAGER_ROLES:
        raise _refuse("forbidden", "Only owners and admins can revoke invitations.", 403)
    invitation.delete()


def membership_change_role(*, membership: Membership, actor: User, actor_role: str, role: str) -> Membership:
    if role not in Role.values:
        raise _refuse("invalid", f"Role must be one of {', '.join(Role.values)}.")
    if actor_role not in MANAGER_ROLES:
        raise _refuse("forbidden", "Only owners and admins can change roles.", 403)
    if Role.OWNER in (role, membership.role) and actor_role != Role.OWNER:
        raise _refuse("forbidden", "Only an owner can grant or take away the owner role.", 403)
    with transaction.atomic():
        if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(membership.workspace) <= 1:
            raise _refuse("last_owner", "A workspace needs at least one owner; make someone else owner first.", 409)
        membership.role = role
        membership.save(update_fields=["role"])
        _invitations_withdraw(workspace=membership.workspace, inviter_id=membership.user_id, inviter_role=role)
    return membership


def membership_remove(*, membership: Membership, actor: User, actor_role: str) -> None:
    if membership.user_id == actor.pk:
        return membership_leave(membership=membership)
    if actor_role not in MANAGER_ROLES:
        raise _refuse("forbidden", "Only owners and admins can remove members.", 403)
    if membership.role == Role.OWNER and actor_role != Role.OWNER:
        raise _refuse("forbidden", "Only an owner can remove an owner.", 403)
    with transaction.atomic():
        if membership.role == Role.OWNER and _owner_count(membership.workspace) <= 1:
            raise _refuse("last_owner", "The last owner cannot be removed.", 409)
        membership.delete()
        _invitations_withdraw(workspace=membership.workspace, inviter_id=membership.user_id, inviter_role=None)


def membership_leave(*, membership: Membership) -> None:
    if membership.workspace.kind == Workspace.Kind.PERSONAL:
        raise _refuse("invalid", "You cannot leave your personal workspace.")
    with transaction.atomic():
        if membership.role == Role.OWNER and _owner_count(membership.workspace) <= 1:
            raise _refuse("last_owner", "You are the last owner; make someone else owner before you leave.", 409)
        membership.delete()
        _invitations_withdraw(workspace=membership.workspace, inviter_id=membership.user_id, inviter_role=None)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str


def token_create(*, user: User, name: str, expires_at: datetime | None = None) -> IssuedToken:
    """Issue a personal access token; the raw value is returned once and never stored."""
    name = (name or "").strip() or "API token"
    if len(name) > 100:
        raise _refuse("invalid", "A token name has at most 100 characters.")
    if expires_at is not None and expires_at <= timezone.now():
        raise _refuse("invalid", "The expiry must be in the future.")
    raw = "cst_" + secrets.token_urlsafe(32)
    for _ in range(3):
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user, name=name, prefix=raw[:10], token_hash=token_digest(raw), expires_at=expires_at
                )
            return IssuedToken(token=token, raw=raw)
        except IntegrityError:  # pragma: no cover - a 256-bit collision
            raw = "cst_" + secrets.token_urlsafe(32)
    raise RuntimeError("could not issue a unique token")


def token_revoke(*, token: ApiToken) -> bool:
    """Revoke a token; False when it already was (by an earlier or a concurrent call): nothing is
    done, and the API answers 404, as for a link revoked twice."""
    now = timezone.now()
    done = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if done:
        token.revoked_at = now
    return bool(done)


# Every API request runs this query: compiled once per process (cloudstorage/compiled.py). No
# ordering: token_hash is unique, and the default ordering would add a sort.
_TOKEN = CompiledQuery(
    lambda *, token_hash: ApiToken.objects.select_related("user").filter(token_hash=token_hash).order_by()[:1],
    token_hash=ApiToken._meta.get_field("token_hash"),
)


def token_authenticate(*, raw: str) -> ApiToken | None:
    token = _TOKEN.first(token_hash=token_digest(raw))
    if token is None:
        return None
    if not token.is_usable or not token.user.is_active:
        return None
    now = timezone.now()
    # One write a minute at most per token, not one per request.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def user_sessions_end(*, user_id, keep: str | None = None) -> int:
    """Delete every stored session of a user (but ``keep``, the session key of the request that
    changed the password); how many were deleted.

    Django already refuses a session whose password hash is stale on its next request; deleting the
    rows as well means a stolen session cookie or headless session token is gone from the store, not
    just dormant. Sessions are not indexed by user, so this walks the live ones (a rare event: a
    password reset or change), in the background."""
    from importlib import import_module

    from django.contrib.sessions.models import Session

    if settings.SESSION_ENGINE not in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        return 0  # other engines cannot be listed; the stale password hash still ends them
    store = import_module(settings.SESSION_ENGINE).SessionStore
    wanted = str(user_id)
    ended = 0
    live = Session.objects.filter(expire_date__gt=timezone.now()).order_by("session_key")
    for session in live.iterator(chunk_size=2000):
        if session.session_key == keep:
            continue
        if str(session.get_decoded().get("_auth_user_id", "")) == wanted:
            store(session_key=session.session_key).delete()
            ended += 1
    return ended
