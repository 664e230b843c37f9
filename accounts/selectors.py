"""Reads for workspaces and memberships; every tenant lookup answers 404 to outsiders."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404

from accounts.models import Invitation, Membership, User, Workspace
from cloudstorage.compiled import CompiledQuery
from cloudstorage.errors import ServiceError
from files.models import Node


def workspaces_for_user(*, user: User) -> QuerySet[Workspace]:
    """The caller's workspaces, annotated with ``role`` and ``root_id``."""
    # Unordered subqueries: Membership's default ordering would join two more tables per row.
    roles = Membership.objects.filter(workspace=OuterRef("pk"), user=user).order_by().values("role")[:1]
    roots = Node.objects.filter(workspace=OuterRef("pk"), parent__isnull=True).order_by().values("id")[:1]
    return (
        Workspace.objects.filter(memberships__user=user)
        .annotate(role=Subquery(roles), root_id=Subquery(roots))
        .order_by("kind", "name", "created_at")
    )


# The API's list and every workspace route run these: compiled once per process
# (cloudstorage/compiled.py).
_USER = Membership._meta.get_field("user")
WORKSPACES = CompiledQuery(lambda *, user: workspaces_for_user(user=user), user=_USER)
_WORKSPACE = CompiledQuery(
    lambda *, user, workspace_id: workspaces_for_user(user=user).filter(pk=workspace_id)[:1],
    user=_USER,
    workspace_id=Workspace._meta.pk,
)


def workspace_get_for_user(*, user: User, workspace_id) -> Workspace:
    """The workspace with ``.role`` and ``.root_id`` set, or 404 when the user is not a member."""
    if not getattr(user, "is_authenticated", False):
        raise Http404
    workspace = _WORKSPACE.first(user=user, workspace_id=workspace_id)
    if workspace is None:
        raise Http404
    return workspace


def membership_get(*, workspace: Workspace, member_id) -> Membership:
    """The membership of the user ``member_id`` in ``workspace``; 404 if they are no member.

    A member is addressed by their user's id (a UUID, unique within a workspace: one membership per
    user), not by the membership's sequential row id, which the API never shows (DESIGN.md: all
    ids are UUIDs)."""
    membership = (
        Membership.objects.select_related("user", "workspace").filter(workspace=workspace, user_id=member_id).first()
    )
    if membership is None:
        raise Http404
    return membership


# Who was invited (their e-mail and role) is for the people who manage membership only.
INVITATION_READERS = (Membership.Role.OWNER, Membership.Role.ADMIN)


def invitations_open_for(*, workspace: Workspace) -> QuerySet[Invitation]:
    """The open invitations of a workspace fetched with ``workspace_get_for_user`` (so ``.role`` is the
    caller's); 403 for members and viewers, who must not learn invitees' addresses."""
    if workspace.role not in INVITATION_READERS:
        raise ServiceError(code="forbidden", message="Only owners and admins can see invitations.", status_code=403)
    return Invitation.objects.filter(workspace=workspace, accepted_at__isnull=True)
