"""Browser pages for workspaces, members, invitations and API tokens."""

from __future__ import annotations

from datetime import timedelta

from allauth.account.decorators import reauthentication_required
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.forms import InviteForm, RoleForm, TokenForm, WorkspaceForm
from accounts.models import ApiToken, Invitation, Membership
from accounts.selectors import (
    INVITATION_READERS,
    invitations_open_for,
    membership_get,
    workspace_get_for_user,
    workspaces_for_user,
)
from accounts.services import (
    invitation_accept,
    invitation_create,
    invitation_get_open,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    token_create,
    token_revoke,
    workspace_create_team,
)
from cloudstorage.errors import ServiceError


def home(request: HttpRequest) -> HttpResponse:
    """The landing page; a logged-in person goes straight to their files (as Drive and Dropbox do)."""
    if request.user.is_authenticated:
        return redirect("files_home")
    return render(request, "home.html")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/dashboard.html",
        {"workspaces": workspaces_for_user(user=request.user), "form": WorkspaceForm()},
    )


@login_required
@require_POST
def workspace_create(request: HttpRequest) -> HttpResponse:
    form = WorkspaceForm(request.POST)
    if form.is_valid():
        try:
            workspace = workspace_create_team(owner=request.user, name=form.cleaned_data["name"])
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Workspace “{workspace.name}” created.")
            return redirect("workspace_detail", workspace_id=workspace.pk)
    return render(
        request,
        "accounts/dashboard.html",
        {"workspaces": workspaces_for_user(user=request.user), "form": form},
        status=400,
    )


def _workspace_page(request, workspace, *, invite_form=None, status=200) -> HttpResponse:
    members = Membership.objects.filter(workspace=workspace).select_related("user")
    can_manage = workspace.role in INVITATION_READERS
    invitations = invitations_open_for(workspace=workspace) if can_manage else Invitation.objects.none()
    return render(
        request,
        "accounts/workspace_detail.html",
        {
            "workspace": workspace,
            "members": members,
            "invitations": invitations,
            "invite_form": invite_form or InviteForm(),
            "roles": Membership.Role.choices,
            "can_manage": can_manage,
        },
        status=status,
    )


@login_required
def workspace_detail(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    return _workspace_page(request, workspace)


@login_required
@require_POST
def workspace_invite(request: HttpRequest, workspace_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation_create(
                workspace=workspace,
                inviter=request.user,
                inviter_role=workspace.role,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("workspace_detail", workspace_id=workspace.pk)
    return _workspace_page(request, workspace, invite_form=form, status=400)


@login_required
@require_POST
def workspace_invitation_revoke(request: HttpRequest, workspace_id, invitation_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    invitation = Invitation.objects.filter(workspace=workspace, pk=invitation_id, accepted_at__isnull=True).first()
    if invitation is None:
        raise Http404
    try:
        invitation_revoke(invitation=invitation, actor_role=workspace.role)
        messages.success(request, "Invitation withdrawn.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("workspace_detail", workspace_id=workspace.pk)


@login_required
@require_POST
def workspace_member_role(request: HttpRequest, workspace_id, member_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    membership = membership_get(workspace=workspace, member_id=member_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
    else:
        try:
            membership_change_role(
                membership=membership, actor=request.user, actor_role=workspace.role, role=form.cleaned_data["role"]
            )
            messages.success(request, f"{membership.user.email} is now {membership.role}.")
        except ServiceError as exc:
            messages.error(request, exc.message)
    return redirect("workspace_detail", workspace_id=workspace.pk)


@login_required
@require_POST
def workspace_member_remove(request: HttpRequest, workspace_id, member_id) -> HttpResponse:
    workspace = workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    membership = membership_get(workspace=workspace, member_id=member_id)
    leaving = membership.user_id == request.user.pk
    try:
        membership_remove(membership=membership, actor=request.user, actor_role=workspace.role)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("workspace_detail", workspace_id=workspace.pk)
    if leaving:
        messages.success(request, f"You left “{workspace.name}”.")
        return redirect("dashboard")
    messages.success(request, f"{membership.user.email} was removed.")
    return redirect("workspace_detail", workspace_id=workspace.pk)


def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    invitation = invitation_get_open(token=token)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    if not request.user.is_authenticated:
        return render(request, "accounts/invitation.html", {"invitation": invitation, "token": token})
    if request.method == "POST":
        try:
            membership = invitation_accept(token=token, user=request.user)
        except ServiceError as exc:
            messages.error(request, exc.message)
            return render(
                request, "accounts/invitation.html", {"invitation": invitation, "token": token}, status=exc.status_code
            )
        messages.success(request, f"You joined “{membership.workspace.name}”.")
        return redirect("workspace_detail", workspace_id=membership.workspace_id)
    return render(request, "accounts/invitation.html", {"invitation": invitation, "token": token})


ISSUED_TOKEN_KEY = "accounts.issued_token"


# A token outlives the session and a password reset, so a session alone (stolen, or a laptop left
# unlocked) must not turn into lasting API and WebDAV access: creating one asks for the password
# (or a 2FA code) again unless it was given in the last ACCOUNT_REAUTHENTICATION_TIMEOUT seconds,
# as POST /api/v1/auth/token/ asks for them. allauth keeps the POST and replays it once confirmed.
@login_required
@reauthentication_required(allow_get=True)
def tokens(request: HttpRequest) -> HttpResponse:
    """Create a token by POST, then redirect (a reload must not create a second one); the raw
    token rides in the session to the next GET, which shows it once and forgets it."""
    form = TokenForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            days = form.cleaned_data.get("expires_in_days")
            expires_at = timezone.now() + timedelta(days=days) if days else None
            issued = token_create(user=request.user, name=form.cleaned_data["name"], expires_at=expires_at)
            request.session[ISSUED_TOKEN_KEY] = {"name": issued.token.name, "raw": issued.raw}
            return redirect("tokens")
        status = 400
    return render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "issued": request.session.pop(ISSUED_TOKEN_KEY, None) if request.method == "GET" else None,
            "tokens": ApiToken.objects.filter(user=request.user, revoked_at__isnull=True),
        },
        status=status,
    )


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, token_id) -> HttpResponse:
    token = ApiToken.objects.filter(user=request.user, pk=token_id).first()
    if token is None:
        raise Http404
    if token_revoke(token=token):
        messages.success(request, f"Token “{token.name}” revoked.")
    else:
        messages.info(request, f"Token “{token.name}” was already revoked.")
    return redirect("tokens")
