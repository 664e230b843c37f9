"""Sharing a file or folder with another user by e-mail (view or edit); a share covers the subtree.

Who may do what is decided in files.access; these services only add the rules of sharing itself:
sharing needs edit (a share grants view or edit, never more), an unknown address is a clear error,
and the grantee gets an e-mail. Revoking deletes the row, so the very next request is refused; a
share made by a grantee works only while they may still edit the item (files.access).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Membership, User
from cloudstorage.errors import ServiceError
from cloudstorage.text import mail_subject
from files.access import permission_at_least, share_grants, share_may_change, shares_mark_active
from files.activity import activity_record
from files.models import Node, Share
from files.tree import folders_up


def _grantee(*, email: str) -> User:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ServiceError(code="invalid", message="Enter a valid e-mail address.", status_code=400) from None
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    if user is None:
        raise ServiceError(
            code="unknown_user",
            message=f"No account uses {email}. Ask them to sign up first, then share again.",
            status_code=400,
            details={"email": email},
        )
    return user


def _notify(*, share: Share, actor) -> None:
    node = share.node
    context = {
        "actor": actor,
        "node": node,
        "share": share,
        "link": settings.SITE_URL + reverse("files_shared"),
        "kind": "folder" if node.is_folder else "file",
    }
    subject = mail_subject(f'{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{actor.email} shared "{node.name}" with you')
    email = share.user.email
    transaction.on_commit(
        lambda: send_mail(
            subject=subject,
            message=render_to_string("emails/share.txt", context),
            from_email=None,
            recipient_list=[email],
        )
    )


def _editor_check(*, permission: str, yours: str | None, refusal: str) -> None:
    """400 unless ``permission`` is one a share can give; 403 ``refusal`` unless the actor, whose
    permission is ``yours``, may edit the item: a share lends the sharer's access, and it works only
    while they may edit it (files.access)."""
    if permission not in Share.Permission.values:
        raise ServiceError(code="invalid", message="permission must be view or edit.", status_code=400)
    if not permission_at_least(yours, "edit"):
        raise ServiceError(code="permission_denied", message=refusal, status_code=403, details={"yours": yours})


def share_create(*, actor, node: Node, email: str, permission: str) -> tuple[Share, bool]:
    """Share ``node`` (from files.access with ``.permission`` set) with the account of ``email``.

    Sharing again with the same person changes the permission. Returns (share, created)."""
    # As in Dropbox and Google Drive, a viewer may not share onwards.
    _editor_check(
        permission=permission,
        yours=node.permission,
        refusal="You can only share items you can edit; ask someone who can edit it to share it.",
    )
    if node.parent_id is None:
        raise ServiceError(
            code="invalid",
            message="The root folder cannot be shared; invite the person to the workspace instead.",
            status_code=400,
        )
    grantee = _grantee(email=email)
    if grantee.pk == actor.pk:
        raise ServiceError(code="invalid", message="You cannot share with yourself.", status_code=400)
    if Membership.objects.filter(workspace_id=node.workspace_id, user=grantee).exists():
        raise ServiceError(
            code="already_member",
            message=f"{grantee.email} is a member of this workspace and already has access by their role.",
            status_code=409,
        )
    with transaction.atomic():
        share = Share.objects.select_for_update().filter(node=node, user=grantee).first()
        created = share is None
        if created:
            try:
                with transaction.atomic():
                    share = Share.objects.create(
                        workspace_id=node.workspace_id, node=node, user=grantee, permission=permission, created_by=actor
                    )
            except IntegrityError:
                share = Share.objects.select_for_update().get(node=node, user=grantee)
                created = False
        if not created:
            if share.permission == permission:
                return share, False
            if not share_may_change(user=actor, share=share, permission=node.permission):
                raise ServiceError(
                    code="permission_denied",
                    message=f"{grantee.email} already has {share.permission} access to this item; "
                    "only its owner or someone who can edit it may change that.",
                    status_code=403,
                )
            share.permission = permission
            share.save(update_fields=["permission"])
        activity_record(
            workspace_id=node.workspace_id,
            actor=actor,
            verb="share" if created else "share_change",
            node=node,
            details={"email": grantee.email, "permission": permission},
        )
        if created:
            share.node = node
            _notify(share=share, actor=actor)
    return share, created


def share_update(*, actor, share: Share, permission: str) -> Share:
    """Change a share's permission (``share`` from files.access.share_get_for_user).

    The rule of share_create: changing a share is sharing, so it needs edit on the item, and then
    either permission may be given (a share never grants more than edit). A share's creator who can
    only view the item now may still remove it, not change it: it is off while they cannot edit."""
    if permission in Share.Permission.values and share.actor_permission is None:
        raise ServiceError(
            code="permission_denied", message="You can remove a share you received, not change it.", status_code=403
        )
    _editor_check(
        permission=permission,
        yours=share.actor_permission,
        refusal="You can only change shares of items you can edit; you can still remove a share you made.",
    )
    if share.permission != permission:
        share.permission = permission
        share.save(update_fields=["permission"])
        activity_record(
            workspace_id=share.workspace_id,
            actor=actor,
            verb="share_change",
            node=share.node,
            details={"email": share.user.email, "permission": permission},
        )
    return share


def share_revoke(*, actor, share: Share) -> bool:
    """Remove a share (the grantee may remove their own); effective on the very next request,
    because every permission check reads the shares afresh. False when a concurrent call removed it
    first (nothing done; the API answers 404, as for a share already gone)."""
    with transaction.atomic():
        deleted, _ = Share.objects.filter(pk=share.pk).delete()
        if deleted:
            activity_record(
                workspace_id=share.workspace_id,
                actor=actor,
                verb="unshare",
                node=share.node,
                details={"email": share.user.email, "permission": share.permission},
            )
    return bool(deleted)


def shares_for_node(*, node: Node) -> list[Share]:
    """The shares that reach ``node``: its own and those of its ancestors (``inherited``), each with
    ``.active`` (False: a reshare whose creator may no longer edit the item, see files.access)."""
    return shares_mark_active(
        shares=Share.objects.select_related("user", "created_by", "node").order_by("created_at", "pk"), node=node
    )


def shares_with_user(*, user) -> list[Share]:
    """What others shared with ``user``, is not in the trash and still works (a reshare whose
    creator may no longer edit the item does not), newest first."""
    shares = list(
        Share.objects.filter(user=user, node__trashed_in__isnull=True)
        .select_related("node", "created_by", "workspace")
        .order_by("-created_at", "-pk")
    )
    if not shares:
        return shares
    known = folders_up(start_ids=[share.node_id for share in shares])
    live = share_grants(user_ids={user.pk}, known=known)
    return [share for share in shares if (user.pk, share.node_id) in live]
