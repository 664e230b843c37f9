"""The one place that decides who may do what to a node (STYLE.md habit 1).

Permissions, weakest first: ``view`` (read, download), ``edit`` (write inside: upload, rename,
move, delete, create public links, share with people), ``manage`` (a workspace's owners and admins:
also link policies, the link inventory, activity, emptying the trash). A workspace member's role
gives the permission on every node of the workspace; a share gives it on the shared node's subtree.
Sharing onwards needs ``edit`` (as in Dropbox and Google Drive, a viewer may not share), and a share
never grants more than ``edit``. Anyone else gets a 404, never a 403, so the existence of a node is
not revealed.

Shares and public links stop working while their node (or an ancestor) is in the trash, because
every lookup here refuses trashed nodes; they work again after a restore. A public link also works
only while its creator may still ``edit`` its node (what making it took): it is their access lent
to anyone with the token, so revoking their share, removing or demoting them, or deactivating or
deleting their account switches it off at once, decided each time the link is used. A share
follows the same rule (:func:`_live_share_keys`): it works only while its creator may still
``edit`` the shared node, so a reshare ends with the share it was made through (and every
reshare made from it), and works again if its creator regains edit.

Paths follow the same line (:func:`node_paths_for_user`): a member sees a node's path from the
workspace root; someone with only a share sees it from the highest node shared with them, which
stands at the top (``/shared-sub/a.txt``), so the names of the owner's folders above a share are
never revealed.
"""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from accounts.models import Membership, Workspace
from cloudstorage.compiled import CompiledQuery
from cloudstorage.errors import ServiceError
from files.models import Node, PublicLink, Share, Vault
from files.tree import ancestor_chain, chain_ids_sql, folders_up, path_from

LEVELS = {"view": 1, "edit": 2, "manage": 3}
ROLE_PERMISSION = {
    Membership.Role.OWNER: "manage",
    Membership.Role.ADMIN: "manage",
    Membership.Role.MEMBER: "edit",
    Membership.Role.VIEWER: "view",
}


def permission_at_least(permission: str | None, need: str) -> bool:
    return permission is not None and LEVELS[permission] >= LEVELS[need]


def workspace_permission(*, user, workspace_id) -> str | None:
    """The permission a membership gives on every node of the workspace, or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    role = Membership.objects.filter(workspace_id=workspace_id, user=user).values_list("role", flat=True).first()
    return ROLE_PERMISSION.get(role) if role else None


def node_ancestor_ids(*, node: Node) -> list:
    """Ids from the node up to the root (the node first); one query at any depth."""
    if node.parent_id is None:
        return [node.pk]
    return [node.pk] + [node_id for node_id, _, _ in ancestor_chain(node_id=node.parent_id)]


_UNKNOWN = object()


def node_permission(*, user, node: Node, membership=_UNKNOWN) -> str | None:
    """The caller's permission on ``node``: from their membership, else the strongest share of an
    ancestor (or the node itself); None when they have no business with it. ``membership`` is the
    membership's permission when the caller already read it (None: not a member)."""
    if membership is _UNKNOWN:
        membership = workspace_permission(user=user, workspace_id=node.workspace_id)
    permission = membership
    if permission is not None:
        return permission
    return _share_grant(user=user, node=node)[0]


def _share_grant(*, user, node: Node) -> tuple[str | None, str | None]:
    """The strongest permission the caller's live shares give on ``node`` (a share of the node or
    of an ancestor), and the node's path as they may see it (see :func:`node_paths_for_user`), read
    by the same two queries (three when a share of theirs is a reshare); ``(None, None)`` without
    a share."""
    if not getattr(user, "is_authenticated", False):
        return None, None
    chain = [(node.pk, node.parent_id, node.name)]
    if node.parent_id is not None:
        chain += ancestor_chain(node_id=node.parent_id)
    known = {node_id: (parent_id, name) for node_id, parent_id, name in chain}
    shares = share_grants(
        user_ids={user.pk}, known=known, mine=Share.objects.filter(user=user, node_id__in=list(known))
    )
    if not shares:
        return None, None
    permission = "edit" if Share.Permission.EDIT in shares.values() else "view"
    return permission, _path_below_share(chain, {node_id for _, node_id in shares})


# What share_grants reads of a share: enough to decide whether it still works.
_SHARE_ROW = ("pk", "node_id", "user_id", "permission", "created_by_id", "creator_role", "creator_active")


def shares_mark_active(*, shares: QuerySet, node: Node) -> list[Share]:
    """``shares`` (the shares that reach ``node``: its own and its ancestors') with ``.active``: whether
    each still works (see :func:`_live_share_keys`), so that whoever manages them sees a reshare
    whose creator lost edit, and can revoke it. The chain's query and the shares' own (their
    creators' roles ride along); ``shares`` must be every share of the chain, as it decides."""
    chain = [(node.pk, node.parent_id, node.name)]
    if node.parent_id is not None:
        chain += ancestor_chain(node_id=node.parent_id)
    known = {node_id: (parent_id, name) for node_id, parent_id, name in chain}
    shares = list(with_creator_access(shares.filter(node_id__in=list(known))))
    alive = _live_share_keys(rows=shares, known=known)
    for share in shares:
        share.active = share.pk in alive
    return shares


def share_grants(*, user_ids, known: dict | None = None, chain_of=None, mine: QuerySet | None = None) -> dict:
    """``{(user id, node id): permission}`` of the live shares of ``user_ids`` on the nodes of
    ``known`` (a :func:`files.tree.folders_up` answer: the nodes and all their ancestors), or on
    the node ``chain_of`` and its ancestors.

    ``mine`` narrows the first query (default: the users' shares on those nodes). One query when
    every share found was made by a member of its workspace; one more, whatever the depth and the
    length of the chain of reshares, when one was made by a grantee (a reshare), to read every
    share on those nodes (two with ``chain_of``: the chain is read then): whether a reshare works
    depends only on shares of the same chain."""
    if known is not None and not known:
        return {}
    if mine is None:
        on_chain = list(known) if known is not None else chain_ids_sql(node_id=chain_of)
        mine = Share.objects.filter(user_id__in=user_ids, node_id__in=on_chain)
    rows = list(with_creator_access(mine).values_list(*_SHARE_ROW, named=True))
    if known is not None:
        rows = [row for row in rows if row.node_id in known]
    if not rows:
        return {}
    if any(row.creator_role is None and row.creator_active for row in rows):
        if known is None:
            known = folders_up(start_ids=[chain_of])
        rows = list(
            with_creator_access(Share.objects.filter(node_id__in=list(known))).values_list(*_SHARE_ROW, named=True)
        )
    alive = _live_share_keys(rows=rows, known=known or {})
    return {(row.user_id, row.node_id): row.permission for row in rows if row.user_id in user_ids and row.pk in alive}


def _live_share_keys(*, rows: list, known: dict) -> set:
    """The ids of the shares among ``rows`` that still work: a share works while its creator may
    ``edit`` its node (what making it took), as :func:`node_permission` decides it: by their
    membership's role if they have one (a membership hides their shares), else by a live edit share
    of theirs on the node or a folder above it. Not once their account is deleted or deactivated.
    ``rows`` must hold every share on the shared nodes' chains whose creator is no member; a cycle of
    reshares (A reshares to B, B to A) gives nothing."""

    def at_or_above(top, node_id) -> bool:
        current, steps = node_id, 0
        while current is not None and steps <= len(known):
            if current == top:
                return True
            current, steps = known.get(current, (None, None))[0], steps + 1
        return False

    alive, pending, made_by = set(), [], {}
    for row in rows:
        if not row.creator_active:
            continue
        if row.creator_role:
            if permission_at_least(ROLE_PERMISSION.get(row.creator_role), "edit"):
                alive.add(row.pk)
                pending.append(row)
        else:
            made_by.setdefault(row.created_by_id, []).append(row)
    # From the shares members made, down the reshares made through them.
    while pending:
        grant = pending.pop()
        if grant.permission != Share.Permission.EDIT:
            continue
        for row in made_by.get(grant.user_id, ()):
            if row.pk not in alive and at_or_above(grant.node_id, row.node_id):
                alive.add(row.pk)
                pending.append(row)
    return alive


def _path_below_share(chain: list[tuple], shared: set) -> str:
    """``/shared/a/name`` from ``chain`` (``[(id, parent id, name), ...]``, the node first): the
    names from the highest shared node of the chain down to the node."""
    top = max((index for index, (node_id, _, _) in enumerate(chain) if node_id in shared), default=0)
    return "/" + "/".join(name for _, _, name in reversed(chain[: top + 1]))


def node_paths_for_user(*, user, nodes: list[Node], member: bool | None = None, full_paths: dict | None = None) -> dict:
    """``{node id: path}`` of nodes the caller may see, as they may see them.

    A member of the nodes' workspace gets the path from the workspace root (``/a/b/name``, the root
    is ``/``). Someone who sees the nodes through a share gets the path from the highest node shared
    with them, which stands at the top (``/shared-sub/b/name``): the names of the owner's folders
    above a share are not theirs to know (the dashboard's breadcrumbs stop there too).

    ``member`` is whether the caller is a member of the nodes' workspace, when known (the
    ``.member`` of a node from :func:`node_get_for_user`); otherwise it is read. ``full_paths`` are
    paths from the root the caller already read (:func:`files.selectors.node_paths`), reused for a
    member. One query for a member, two for a grantee (three when a share of theirs is a reshare, see
    :func:`share_grants`), whatever the number and depth of the nodes.
    """
    nodes = list(nodes)
    if not nodes:
        return {}
    workspace_ids = {node.workspace_id for node in nodes}
    if member is None:
        members_of = (
            set(
                Membership.objects.filter(user=user, workspace_id__in=workspace_ids).values_list(
                    "workspace_id", flat=True
                )
            )
            if getattr(user, "is_authenticated", False)
            else set()
        )
    else:
        members_of = workspace_ids if member else set()
    granted = [node for node in nodes if node.workspace_id not in members_of]
    full_paths = full_paths or {}
    paths = {
        node.pk: full_paths[node.pk] for node in nodes if node.workspace_id in members_of and node.pk in full_paths
    }
    unknown = [node for node in nodes if node.workspace_id in members_of and node.pk not in paths]
    if unknown:
        known = folders_up(start_ids=[node.parent_id for node in unknown])
        for node in unknown:
            parent = path_from(known, node.parent_id).rstrip("/") if node.parent_id else None
            paths[node.pk] = "/" if parent is None else f"{parent}/{node.name}"
    if granted:
        known = folders_up(start_ids=[node.pk for node in granted])
        mine = Share.objects.filter(user=user, workspace_id__in={node.workspace_id for node in granted})
        shared = {node_id for _, node_id in share_grants(user_ids={user.pk}, known=known, mine=mine)}
        for node in granted:
            chain = []
            current = node.pk
            while current in known and len(chain) <= len(known):
                parent_id, name = known[current]
                chain.append((current, parent_id, name))
                current = parent_id
            paths[node.pk] = _path_below_share(chain, shared) if chain else f"/{node.name}"
    return paths


def node_path_for_user(*, user, node: Node) -> str:
    """The path of a node the caller got from :func:`node_get_for_user`, as they may see it (see
    :func:`node_paths_for_user`). A grantee's was read by the access check itself; call this
    before the node is renamed or moved, or use :func:`node_paths_for_user` after."""
    granted_path = getattr(node, "granted_path", None)
    if granted_path is not None:
        return granted_path
    return node_paths_for_user(user=user, nodes=[node], member=getattr(node, "member", None))[node.pk]


def permission_after_write(*, node: Node, through: Node) -> Node:
    """Set ``node.permission`` for a node the caller just created, wrote, moved or copied through
    ``through`` (a node from :func:`node_get_for_user` with at least ``edit``: the folder written
    into, or the node itself), without deciding again from the database.

    It is ``through.permission``: a membership gives one permission on every node of its workspace,
    and without a membership the caller's ``edit`` came from a share, and no share grants more than
    ``edit``; a viewer's membership hides every share, so they never got this far. So neither the
    new node's own shares nor its new ancestors can change the answer.
    """
    permission = getattr(through, "permission", None)
    if not permission_at_least(permission, "edit"):
        raise ValueError("permission_after_write needs a node the caller may edit")
    node.permission = permission
    # The write may have renamed or moved it: its path is read again (node_path_for_user).
    node.member = getattr(through, "member", None)
    node.granted_path = None
    return node


def _refuse(need: str) -> ServiceError:
    what = {"view": "see", "edit": "change", "manage": "manage"}[need]
    return ServiceError(
        code="permission_denied", message=f"You do not have permission to {what} this item.", status_code=403
    )


def _node_with_role(*, node_id, user) -> QuerySet:
    # The caller's role rides along with the node: one query instead of two on every request.
    # No ordering: Membership's default one would join the workspace and user tables again.
    roles = Membership.objects.filter(workspace=OuterRef("workspace_id"), user=user).order_by().values("role")[:1]
    # Whether the workspace has vaults rides along too: an upload into a folder of one without
    # (nearly all) asks nothing more to know that no vault rule applies (files.vault_rules).
    vaults = Vault.objects.filter(workspace_id=OuterRef("workspace_id"))
    return (
        Node.objects.select_related("workspace")
        .filter(pk=node_id)
        .annotate(caller_role=Subquery(roles), has_vaults=Exists(vaults))[:1]
    )


# Every request about a node runs this query: compiled once per process (cloudstorage/compiled.py).
_NODE_WITH_ROLE = CompiledQuery(_node_with_role, node_id=Node._meta.pk, user=Membership._meta.get_field("user"))


def node_get_for_user(*, user, node_id, need: str = "view", trashed: bool = False) -> Node:
    """The node with ``.permission`` set, if the caller may ``need`` it.

    404 when the node does not exist, is in the trash (unless ``trashed``) or is none of the
    caller's business; 403 when they may see it but not do ``need``. ``trashed=True`` returns only
    trashed roots (the trash routes) and requires a membership: shares do not reach the trash.
    """
    if not is_uuid(node_id):
        raise Http404
    authenticated = getattr(user, "is_authenticated", False)
    if authenticated:
        node = _NODE_WITH_ROLE.first(node_id=node_id, user=user)
    else:
        node = Node.objects.select_related("workspace").filter(pk=node_id).first()
    if node is None:
        raise Http404
    membership = ROLE_PERMISSION.get(node.caller_role) if authenticated and node.caller_role else None
    granted_path = None
    if trashed:
        if node.deleted_at is None:
            raise Http404
        permission = membership
    elif node.trashed_in_id is not None:
        raise Http404
    elif membership is not None:
        permission = membership
    else:
        permission, granted_path = _share_grant(user=user, node=node)
    if permission is None:
        raise Http404
    if not permission_at_least(permission, need):
        raise _refuse(need)
    node.permission = permission
    # For node_path_for_user: whether the caller is a member, and a grantee's path as of this check.
    node.member = membership is not None
    node.granted_path = granted_path
    return node


def vault_get_for_user(*, user, vault_id, need: str = "view") -> Vault:
    """The vault whose folder is ``vault_id``, if the caller may ``need`` that folder (as
    :func:`node_get_for_user`: 404 for outsiders and for a folder that is no vault); its folder, with
    ``.permission``, is ``vault.node``."""
    node = node_get_for_user(user=user, node_id=vault_id, need=need)
    vault = Vault.objects.filter(node_id=node.pk).first()
    if vault is None:
        raise Http404
    vault.node = node
    return vault


def workspace_get_for_user(*, user, workspace_id, need: str = "view") -> Workspace:
    """A workspace the caller is a member of with at least ``need``; 404 otherwise (403 if too weak)."""
    if not is_uuid(workspace_id):
        raise Http404
    permission = workspace_permission(user=user, workspace_id=workspace_id)
    if permission is None:
        raise Http404
    if not permission_at_least(permission, need):
        raise _refuse(need)
    workspace = Workspace.objects.get(pk=workspace_id)
    workspace.permission = permission
    return workspace


def share_may_change(*, user, share: Share, permission: str | None) -> bool:
    """Whether someone with ``permission`` on the shared node may change or revoke ``share``:
    whoever may ``edit`` the node, and the share's creator while they can still see it (someone
    lowered to view may still take back what they lent), but a viewer never touches a share
    somebody else made."""
    return permission is not None and (permission_at_least(permission, "edit") or share.created_by_id == user.pk)


def share_get_for_user(*, user, share_id) -> Share:
    """A share the caller may change or revoke, with ``.actor_permission`` set.

    Allowed: whoever may ``edit`` the shared node (its workspace's members with edit, managers,
    grantees with edit on an ancestor) and the share's creator while they can still see the node.
    The grantee may only remove their own share (``.actor_permission`` is then ``None``). 404 for
    everyone else and when the node is in the trash.
    """
    share = Share.objects.select_related("node", "user").filter(pk=share_id).first() if is_uuid(share_id) else None
    if share is None or share.node.trashed_in_id is not None:
        raise Http404
    permission = node_permission(user=user, node=share.node)
    if share_may_change(user=user, share=share, permission=permission):
        share.actor_permission = permission
        return share
    if getattr(user, "is_authenticated", False) and share.user_id == user.pk:
        share.actor_permission = None
        return share
    raise Http404


def link_get_for_user(*, user, link_id) -> PublicLink:
    """A public link the caller may see and revoke: the managers of its workspace always (even while
    its node is in the trash or its creator lost access, so no link is ever out of their reach),
    else whoever may ``edit`` its live node. 404 otherwise."""
    links = with_creator_access(PublicLink.objects.select_related("node", "workspace", "created_by"))
    link = links.filter(pk=link_id).first() if is_uuid(link_id) else None
    if link is None:
        raise Http404
    if workspace_permission(user=user, workspace_id=link.workspace_id) == "manage":
        return link
    if link.node.trashed_in_id is None and permission_at_least(node_permission(user=user, node=link.node), "edit"):
        return link
    raise Http404


class LinkGone(Exception):
    """The link existed but no longer works (revoked, expired or out of downloads): HTTP 410."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def link_get_for_token(*, token: str, now=None, lock: bool = False) -> PublicLink:
    """The working public link with this token, for anyone who holds it (no login).

    Http404 for an unknown token or while the node is in the trash (the link comes back on
    restore); LinkGone for a revoked, expired or exhausted link. The password is checked by the
    caller (files.links.link_password_check) because it needs the request. ``lock``: inside the
    caller's transaction, the link's row stays locked (a revoke waits for the caller's commit).
    """
    if not token or len(token) > 64:
        raise Http404
    # has_vaults rides along so that the link pages of the (many) workspaces without vaults ask
    # nothing more to know that no file of theirs is ciphertext.
    links = (
        with_creator_access(PublicLink.objects.select_related("node", "workspace"))
        .annotate(has_vaults=Exists(Vault.objects.filter(workspace_id=OuterRef("workspace_id"))))
        .filter(token=token)
    )
    link = (links.select_for_update(of=("self",)) if lock else links).first()
    if link is None or link.node.trashed_in_id is not None:
        raise Http404
    _link_row_check(link, now=now or timezone.now())
    if not link_creator_may_edit(link=link):
        raise LinkGone("creator_lost_access")
    return link


# What of a link's own row decides whether it still works (link_lock_live reads only these).
_LINK_STATE = ("revoked_at", "expires_at", "max_downloads", "download_count")


def _link_row_check(row, *, now) -> None:
    """LinkGone when the link's own row says it is off: revoked, expired or out of downloads."""
    if row.revoked_at is not None:
        raise LinkGone("revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise LinkGone("expired")
    if row.max_downloads is not None and row.download_count >= row.max_downloads:
        raise LinkGone("exhausted")


def link_lock_live(*, link: PublicLink, now=None) -> None:
    """Inside the caller's transaction: lock the row of ``link`` (from :func:`link_get_for_token`
    in the same request) and check again what the row alone says: not revoked, expired or out of
    downloads (LinkGone), so a revoke waits for the caller's commit or is seen by it. One query on
    the link's primary key, without the joins, the creator's role or shares.

    For a request that uses the link again and again (an upload link's files): the creator's access
    is decided once per request by :func:`link_get_for_token` (files.links.link_upload's first
    commit), and whether the folder is still live by files.folders.folder_lock_live."""
    row = PublicLink.objects.select_for_update().filter(pk=link.pk).values_list(*_LINK_STATE, named=True).first()
    if row is None:
        raise Http404
    _link_row_check(row, now=now or timezone.now())


def link_shows_content(*, link: PublicLink) -> bool:
    """Whether a view link may give its files' bytes outside a counted download (previews, folder
    thumbnails): not with a download limit, since every byte it gives counts as a download."""
    return link.max_downloads is None


def with_creator_access(rows: QuerySet) -> QuerySet:
    """Shares or links with what decides whether they still work riding along in the same query:
    their creator's role in the row's workspace (by the membership's unique index) and whether the
    creator's account is active (:func:`link_creator_may_edit`, :func:`_live_share_keys`)."""
    # No ordering: Membership's default one would join the workspace and user tables again.
    role = Membership.objects.filter(workspace=OuterRef("workspace_id"), user=OuterRef("created_by_id")).order_by()
    return rows.annotate(creator_role=Subquery(role.values("role")[:1]), creator_active=F("created_by__is_active"))


def link_creator_may_edit(*, link: PublicLink) -> bool:
    """Whether the link's creator may still ``edit`` its node, as :func:`node_permission` decides
    it: their membership if they have one (a viewer's hides their shares), else an edit share of
    the node or an ancestor. False once their account is deleted or deactivated.

    ``link`` comes from :func:`with_creator_access`: a link made by a member costs no query, one
    made by a grantee one (three if their share is itself a reshare, see :func:`share_grants`). Lists mark many links at once with :func:`links_mark_creator_access`."""
    marked = getattr(link, "creator_may_edit", None)
    if marked is not None:
        return marked
    if not hasattr(link, "creator_role"):
        link = with_creator_access(PublicLink.objects.filter(pk=link.pk)).select_related("node").get()
    if link.created_by_id is None or not link.creator_active:
        return False
    if link.creator_role:
        return permission_at_least(ROLE_PERMISSION.get(link.creator_role), "edit")
    # A live edit share of the node or a folder above: one query for the creator's shares on the
    # chain with their creators' roles; a reshare among them also needs the chain's other shares.
    grants = share_grants(user_ids={link.created_by_id}, chain_of=link.node_id)
    return Share.Permission.EDIT in grants.values()


def links_mark_creator_access(*, links: list[PublicLink]) -> list[PublicLink]:
    """Set ``.creator_may_edit`` on each of ``links`` (from :func:`with_creator_access`) for a list
    of them (an inventory page): two queries for all the grantees' links (three if one of their
    shares is a reshare), none for members'."""
    pending = []
    for link in links:
        if link.created_by_id is None or not link.creator_active:
            link.creator_may_edit = False
        elif link.creator_role:
            link.creator_may_edit = permission_at_least(ROLE_PERMISSION.get(link.creator_role), "edit")
        else:
            pending.append(link)
    if pending:
        known = folders_up(start_ids=[link.node_id for link in pending])
        grants = share_grants(user_ids={link.created_by_id for link in pending}, known=known)
        edit_shares = {key for key, permission in grants.items() if permission == Share.Permission.EDIT}
        for link in pending:
            link.creator_may_edit = False
            current, steps = link.node_id, 0
            while current is not None and steps <= len(known):
                if (link.created_by_id, current) in edit_shares:
                    link.creator_may_edit = True
                    break
                current, steps = known.get(current, (None, None))[0], steps + 1
    return links


def link_node_get(*, link: PublicLink, node_id) -> Node:
    """A live node inside the link's subtree (the link's node itself when ``node_id`` is empty);
    404 for anything outside it, so a folder link never reaches a sibling.

    The node comes with ``.link_trail``: ``[(id, parent id, name), ...]`` from the link's node down
    to it, read by the same query as the check (the page's breadcrumbs)."""
    if not node_id:
        node = link.node
        node.link_trail = [(node.pk, node.parent_id, node.name)]
        return node
    node = Node.objects.filter(pk=node_id, workspace_id=link.workspace_id).first() if is_uuid(node_id) else None
    if node is None or node.trashed_in_id is not None:
        raise Http404
    chain = [(node.pk, node.parent_id, node.name)]
    if node.parent_id is not None:
        chain += ancestor_chain(node_id=node.parent_id)
    ids = [node_id for node_id, _, _ in chain]
    if link.node_id not in ids:
        raise Http404
    node.link_trail = list(reversed(chain[: ids.index(link.node_id) + 1]))
    return node


def is_uuid(value) -> bool:
    """Whether ``value`` is a UUID or its text (an id from a URL or tus metadata, before a lookup)."""
    import uuid

    if isinstance(value, uuid.UUID):
        return True
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
