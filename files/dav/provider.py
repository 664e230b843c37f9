"""WebDAV resources over the namespace's services (WsgiDAV does the protocol, files/dav/app.py mounts it).

``/dav/`` lists one collection per workspace the caller belongs to, named by the workspace's name
(a duplicate gets `` (2)``); below it is that workspace's tree. Every read and write goes through
the same services as the REST API, and every write asks :mod:`files.access` first, so access rules,
quota, versions (an overwrite is a new version), the trash (DELETE) and conditional writes are
decided in one place. A service's refusal becomes a DAVError with the REST API's status and message
(over quota is 507, as RFC 4918 asks).

Locks and dead properties are keyed by :meth:`_NodeResource.get_ref_url`: ``/<workspace id>/path``,
never the per-user display path, so two tenants' ``/dav/Home/x`` never share a lock or a property.
That key is no address of ours: a 423's body names the caller's href instead
(:class:`ClientHrefLockManager`).
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from urllib.parse import quote, unquote

from django.db import transaction
from django.http import Http404
from wsgidav import util
from wsgidav.dav_error import (
    HTTP_FORBIDDEN,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_LOCKED,
    HTTP_NOT_FOUND,
    DAVError,
    PRECONDITION_CODE_PropfindFiniteDepth,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider
from wsgidav.lock_man.lock_manager import LockManager

from accounts.models import User
from accounts.selectors import workspaces_for_user
from cloudstorage.errors import ServiceError
from disks.store import StoreError, manifest_open
from files.access import ROLE_PERMISSION, node_get_for_user
from files.activity import activity_record, node_path
from files.content import ContentSink
from files.folders import child_get, folder_create
from files.models import FileVersion, Node
from files.names import content_disposition
from files.nodes import node_copy, node_update
from files.preconditions import Precondition
from files.selectors import children_of
from files.trash import node_trash
from files.uploads import file_upload
from files.versions import content_commit, version_commit

USER_KEY = "cloudstorage.user"


def dav_error(error: Exception) -> DAVError:
    """The DAVError for a service's refusal: the REST API's status and message."""
    if isinstance(error, DAVError):
        return error
    if isinstance(error, Http404):
        return DAVError(HTTP_NOT_FOUND)
    if isinstance(error, ServiceError):
        status = HTTP_INSUFFICIENT_STORAGE if error.code in ("quota_exceeded", "storage_full") else error.status_code
        return DAVError(status, context_info=f"{error.code}: {error.message}")
    if isinstance(error, StoreError):
        return DAVError(503, context_info=str(error))
    raise error


def mapped(method):
    """Run a provider method, turning service errors into DAVErrors."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (ServiceError, Http404, StoreError) as error:
            raise dav_error(error) from error

    return wrapper


class _Workspaces:
    """The caller's workspaces by display name, read once per request."""

    def __init__(self, user):
        self.by_name: dict = {}
        for workspace in workspaces_for_user(user=user):
            name = (workspace.name or "Workspace").replace("/", "_")
            candidate, n = name, 1
            while candidate.casefold() in {taken.casefold() for taken in self.by_name}:
                n += 1
                candidate = f"{name} ({n})"
            self.by_name[candidate] = workspace

    def get(self, name: str):
        """``(display name, workspace)`` by display name, or by id: lock and property keys name a
        workspace by id (``get_ref_url``), and WsgiDAV turns them back into paths to resolve."""
        for candidate, workspace in self.by_name.items():
            if candidate.casefold() == name.casefold() or str(workspace.pk) == name:
                return candidate, workspace
        return None, None


# What WsgiDAV's DAVResource.get_href leaves unquoted, so an href here reads as in a PROPFIND.
HREF_SAFE = "/" + "!*'()," + "$-_|."


def client_href(*, ref_url: str, shown: dict[str, str], mount: str) -> str | None:
    """The href under which the caller sees the lock key ``ref_url`` (``/<workspace id>/a/b``, see
    :meth:`_NodeResource.get_ref_url`), ``shown`` being their workspaces' display names by id; None
    for a workspace that is not one of theirs."""
    workspace_id, _, rest = unquote(ref_url).lstrip("/").partition("/")
    display = shown.get(workspace_id)
    if display is None:
        return None
    return quote(f"{mount}/{display}/{rest}", safe=HREF_SAFE)


class ClientHrefLockManager(LockManager):
    """WsgiDAV's lock manager, whose 423 Locked names what the caller sees.

    WsgiDAV puts the conflicting locks' roots in a 423's body (``<D:no-conflicting-lock><D:href>``)
    as the lock storage keys them: ``/<workspace id>/a/b``, an internal id and no URL of this server
    (RFC 4918 §16 asks for the lock root's URL). Every 423 with such a list comes from the four
    methods below; the list is rewritten to the caller's hrefs (``/dav/Acme/a/b``), and a root the
    caller cannot see is left out (the element may be empty). The caller is the principal, their
    account's e-mail (:meth:`WorkspaceProvider.custom_request_handler`); it is looked up only when
    there is a conflict.
    """

    def __init__(self, storage, *, mount: str):
        super().__init__(storage)
        self.mount = mount

    def _client_hrefs(self, hrefs: list[str], principal: str) -> list[str]:
        user = User.objects.filter(email=principal or "", is_active=True).first()
        shown = {str(workspace.pk): name for name, workspace in _Workspaces(user).by_name.items()} if user else {}
        visible = (client_href(ref_url=href, shown=shown, mount=self.mount) for href in hrefs)
        return list(dict.fromkeys(href for href in visible if href))

    @contextmanager
    def _hrefs_for(self, principal: str):
        try:
            yield
        except DAVError as error:
            condition = error.err_condition
            if error.value == HTTP_LOCKED and condition is not None and condition.hrefs:
                condition.hrefs = self._client_hrefs(condition.hrefs, principal)
            raise

    def acquire(self, **kwargs):
        with self._hrefs_for(kwargs.get("principal")):
            return super().acquire(**kwargs)

    def check_write_permission(self, **kwargs):
        with self._hrefs_for(kwargs.get("principal")):
            return super().check_write_permission(**kwargs)

    def _begin_write_transaction(self, **kwargs):  # write_transaction's check (PUT, MKCOL, ...)
        with self._hrefs_for(kwargs.get("principal")):
            return super()._begin_write_transaction(**kwargs)

    def check_tree_write_permission(
        self, *, url: str, token_list: list[str], principal: str, collection: bool = True
    ) -> None:
        """Raise 423 Locked unless ``principal`` may remove ``url`` and everything below it: every
        lock on it, on a member at any depth, or on an ancestor with depth infinity must be one of
        theirs whose token they present (RFC 4918 §9.6.1, §7.5).

        WsgiDAV's own depth-infinity check counts every lock below ``url`` as a conflict, even its
        owner's with the token (so the owner could never delete such a folder), which is why its
        DELETE asks each member with depth 0 instead (:meth:`_NodeResource.handle_delete`)."""
        with self._hrefs_for(principal):
            self._lock.acquire_read()
            try:
                condition = self._get_write_conflicts(url, "0", token_list, principal)
                below = (
                    self.storage.get_lock_list(url, include_root=False, include_children=True, token_only=False)
                    if collection
                    else []
                )
            finally:
                self._lock.release()
            for lock in below:
                if lock["principal"] != principal or lock["token"] not in token_list:
                    condition.add_href(lock["root"])
            if condition.hrefs:
                raise DAVError(HTTP_LOCKED, err_condition=condition)


def _workspaces(environ) -> _Workspaces:
    if "cloudstorage.dav.workspaces" not in environ:
        environ["cloudstorage.dav.workspaces"] = _Workspaces(environ[USER_KEY])
    return environ["cloudstorage.dav.workspaces"]


class WorkspacesCollection(DAVCollection):
    """``/``: one read-only collection per workspace."""

    def get_member_names(self):
        return list(_workspaces(self.environ).by_name)

    def get_member(self, name):
        return self.provider.get_resource_inst(util.join_uri(self.path, name), self.environ)

    def get_display_name(self):
        return "Workspaces"

    def prevent_locking(self):
        return True

    def create_collection(self, name):
        raise DAVError(HTTP_FORBIDDEN, context_info="Workspaces are created in the dashboard, not over WebDAV.")

    def create_empty_resource(self, name):
        raise DAVError(HTTP_FORBIDDEN, context_info="Files go inside a workspace's folder.")


class _NodeResource:
    """What files and folders share: the node, its workspace, writes and moves through the services."""

    def _setup(self, *, workspace, node: Node, key_path: str):
        self.workspace = workspace
        self.node = node
        self.key_path = key_path  # "/<workspace id>/a/b": the tenant-unique key of locks and properties

    @property
    def user(self):
        return self.environ[USER_KEY]

    def get_ref_url(self):
        suffix = "/" if self.is_collection and not self.key_path.endswith("/") else ""
        return quote(self.key_path + suffix)

    def get_display_name(self):
        return self.node.name or self.path.strip("/").split("/")[-1]

    def get_creation_date(self):
        return self.node.created_at.timestamp()

    def get_last_modified(self):
        return self.node.modified_at.timestamp()

    def _editable(self, node: Node) -> Node:
        """``node`` again, read by the access module with ``edit`` (403 for a viewer)."""
        return node_get_for_user(user=self.user, node_id=node.pk, need="edit")

    def _target(self, dest_path: str) -> tuple[Node, str, object]:
        """The folder and name of a MOVE/COPY destination (a folder of the same workspace)."""
        parent_path, name = util.get_uri_parent(dest_path.rstrip("/")), util.get_uri_name(dest_path.rstrip("/"))
        parent = self.provider.get_resource_inst(parent_path, self.environ)
        if not isinstance(parent, FolderResource):
            raise DAVError(409, context_info="The destination's folder does not exist.")
        if parent.workspace.pk != self.workspace.pk:
            raise DAVError(HTTP_FORBIDDEN, context_info="Items move and copy only within their workspace.")
        existing = self.provider.get_resource_inst(dest_path, self.environ)
        return parent.node, name, existing

    def handle_delete(self):
        """Refuse the whole DELETE (423, nothing changed) when anything in the subtree is locked by
        someone else, or by the caller without the token; otherwise WsgiDAV goes on as usual.

        WsgiDAV asks each member with depth 0 only, and when one is refused it deletes the others
        member by member: a folder locked with depth 0 (refused itself) lost all its members, and
        before folders' paths ended with "/" (:class:`FolderResource`) a lock on a member took the
        whole folder, that member included, to the trash. Asked here, before anything is touched, a
        lock holds; only an If header that some members do not meet still leads to a delete member
        by member."""
        lock_manager = self.provider.lock_manager
        if lock_manager is not None:
            util.parse_if_header_dict(self.environ)
            lock_manager.check_tree_write_permission(
                url=self.get_ref_url(),
                token_list=self.environ["wsgidav.ifLockTokenList"],
                principal=self.environ["wsgidav.user_name"],
                collection=self.is_collection,
            )
        return False

    @mapped
    def delete(self):
        node_trash(user=self.user, node=self._editable(self.node))
        self.remove_all_properties(recursive=True)
        self.remove_all_locks(recursive=True)

    def support_recursive_delete(self):
        return True

    @mapped
    def handle_move(self, dest_path):
        folder, name, existing = self._target(dest_path)
        node = self._editable(self.node)
        parent = self._editable(folder)
        with transaction.atomic():  # a refused move leaves the destination where it was
            if existing is not None:
                node_trash(user=self.user, node=self._editable(existing.node))
            node_update(user=self.user, node=node, name=name, parent=parent)
        if self.provider.prop_manager:
            self.provider.prop_manager.move_properties(
                self.get_ref_url(), quote(self._key_of(folder, name)), with_children=True, environ=self.environ
            )
        return True

    @mapped
    def handle_copy(self, dest_path, *, depth_infinity):
        folder, name, existing = self._target(dest_path)
        parent = self._editable(folder)
        with transaction.atomic():  # a refused copy (507: it does not fit) leaves the destination
            if existing is not None:
                node_trash(user=self.user, node=self._editable(existing.node))
            if self.is_collection and not depth_infinity:
                folder_create(user=self.user, parent=parent, name=name)
            else:
                node_copy(user=self.user, node=self.node, parent=parent, name=name)
        if self.provider.prop_manager:
            self.provider.prop_manager.copy_properties(
                self.get_ref_url(), quote(self._key_of(folder, name)), environ=self.environ
            )
        return True

    def _key_of(self, folder: Node, name: str) -> str:
        folder_key = self.key_path.rsplit("/", 1)[0] if folder.pk == self.node.parent_id else None
        if folder_key is None:
            folder_key = f"/{self.workspace.pk}{node_path(node=folder).rstrip('/')}"
        return f"{folder_key}/{name}"


class FolderResource(_NodeResource, DAVCollection):
    def __init__(self, path, environ, *, workspace, node, key_path):
        # A folder's path ends with "/", as WsgiDAV writes a parent's (util.get_uri_parent): its
        # member-by-member DELETE skips the parents of a refused member by that spelling, and
        # without the slash it trashed them, and the refused member with them.
        super().__init__(path.rstrip("/") + "/", environ)
        self._setup(workspace=workspace, node=node, key_path=key_path)

    def get_member_names(self):
        return [child.name for child in children_of(parent=self.node)]

    def get_member_list(self):
        """Every child from one query (the default asks for each member by path)."""
        members = []
        for child in children_of(parent=self.node):
            members.append(self.provider.resource_for(self.environ, self.path, self.workspace, child, self.key_path))
        return members

    def get_member(self, name):
        child = child_get(parent=self.node, name=name)
        return (
            self.provider.resource_for(self.environ, self.path, self.workspace, child, self.key_path) if child else None
        )

    def get_used_bytes(self):
        return self.workspace.used_bytes

    def get_available_bytes(self):
        return max(self.workspace.quota_bytes - self.workspace.used_bytes, 0)

    @mapped
    def create_collection(self, name):
        folder = folder_create(user=self.user, parent=self._editable(self.node), name=name)
        activity_record(workspace_id=folder.workspace_id, actor=self.user, verb="create_folder", node=folder)

    @mapped
    def create_empty_resource(self, name):
        parent = self._editable(self.node)
        if self.environ.get("REQUEST_METHOD") == "PUT":
            # The body becomes the file when it is complete: nothing is visible before.
            return NewFileResource(util.join_uri(self.path, name), self.environ, parent=parent, name=name)
        # LOCK on an unmapped URL creates an empty file (RFC 4918 §9.10.4).
        node = file_upload(user=self.user, parent=parent, name=name, stream=iter(()), size=0).node
        return self.provider.resource_for(self.environ, self.path, self.workspace, node, self.key_path)


class ManifestReader:
    """A version's content as the seekable file WsgiDAV's GET reads (Range seeks once, then reads).
    A block from the store is handed on whole when the reader asks for at least that much."""

    def __init__(self, version: FileVersion):
        self.version = version
        self.position = 0
        self.blocks = None
        self.block = b""
        self.offset = 0

    def seek(self, position: int) -> None:
        self.position, self.blocks, self.block, self.offset = position, None, b"", 0

    def read(self, size: int = -1) -> bytes:
        if self.blocks is None:
            self.blocks = manifest_open(manifest=self.version.manifest, start=self.position, end=self.version.size)
        parts = []
        wanted = size
        while size < 0 or wanted > 0:
            if self.offset >= len(self.block):
                self.block, self.offset = next(self.blocks, b""), 0
                if not self.block:
                    break
            left = len(self.block) - self.offset
            take = left if size < 0 else min(wanted, left)
            whole = self.offset == 0 and take == len(self.block)
            parts.append(self.block if whole else self.block[self.offset : self.offset + take])
            self.offset += take
            wanted -= take
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.position += len(out)
        return bytes(out)

    def close(self) -> None:
        close = getattr(self.blocks, "close", None)
        if close is not None:
            close()


class _Upload:
    """The file object WsgiDAV's PUT writes the body into: a ContentSink, committed on close()."""

    def __init__(self, *, sink: ContentSink, commit):
        self.sink = sink
        self.commit = commit
        self.done = False

    @mapped
    def write(self, block: bytes) -> None:
        self.sink.write(block)

    @mapped
    def close(self) -> None:
        content = self.sink.finish()
        self.done = True
        self.commit(content)

    def abort(self) -> None:
        if not self.done:
            self.sink.abort()


def _declared_size(environ) -> int | None:
    length = environ.get("CONTENT_LENGTH")
    if length in (None, "") or not str(length).isdigit():
        return None
    return int(length)


class _BodyWrites:
    """PUT's begin_write/end_write: the body streams into a ContentSink (quota reserved as it comes)
    and ``_commit`` makes it a file or a version when it is complete, or it is all given back."""

    upload = None

    @mapped
    def begin_write(self, *, content_type=None):
        workspace = self._writable_workspace()
        precondition = Precondition.from_headers(self.environ)
        sink = ContentSink(workspace=workspace, size=_declared_size(self.environ))
        self.upload = _Upload(sink=sink, commit=lambda content: self._commit(content, precondition))
        return self.upload

    def end_write(self, *, with_errors):
        if with_errors and self.upload is not None:
            self.upload.abort()


class FileResource(_BodyWrites, _NodeResource, DAVNonCollection):
    def __init__(self, path, environ, *, workspace, node, key_path):
        super().__init__(path, environ)
        self._setup(workspace=workspace, node=node, key_path=key_path)

    def get_content_length(self):
        return self.node.size

    def get_content_type(self):
        return self.node.mime_type or "application/octet-stream"

    def get_etag(self):
        return self.node.sha256 or None

    def support_etag(self):
        return True

    def support_ranges(self):
        return True

    def finalize_headers(self, environ, response_headers):
        # GET and HEAD: a download, never a page of the site (files/dav/app.py says why), as the
        # REST API's downloads. WebDAV clients ignore the header; PROPFIND keeps the real type.
        response_headers.append(("Content-Disposition", content_disposition(self.node.name)))

    @mapped
    def get_content(self):
        version = FileVersion.objects.select_related("manifest").filter(pk=self.node.current_version_id).first()
        if version is None:
            raise DAVError(HTTP_NOT_FOUND, context_info="This file has no content yet.")
        return ManifestReader(version)

    def _writable_workspace(self):
        self.writable = self._editable(self.node)
        return self.writable.workspace

    def _commit(self, content, precondition) -> None:
        version = version_commit(
            user=self.user, node=self.writable, content=content, precondition=precondition, activity_verb="upload"
        )
        self.node = version.node


class NewFileResource(_BodyWrites, DAVNonCollection):
    """The target of a PUT to a new name: the file appears only when its body is stored (if another
    upload created the name meanwhile, this body becomes its next version, as in the REST API)."""

    def __init__(self, path, environ, *, parent: Node, name: str):
        super().__init__(path, environ)
        self.parent = parent
        self.name = name
        self.node = None

    def get_content_length(self):
        return self.node.size if self.node else 0

    def get_content_type(self):
        return "application/octet-stream"

    def get_etag(self):
        return self.node.sha256 if self.node else None

    def support_etag(self):
        return True

    def get_content(self):
        raise DAVError(HTTP_NOT_FOUND, context_info="The file is still being uploaded.")

    def _writable_workspace(self):
        return self.parent.workspace

    def _commit(self, content, precondition) -> None:
        user = self.environ[USER_KEY]
        version = content_commit(
            user=user,
            parent=self.parent,
            name=self.name,
            content=content,
            precondition=precondition,
            activity_verb="upload",
        )
        self.node = version.node


# Methods that write to the resource at the request's path (MKCOL and LOCK are refused by
# WorkspacesCollection itself).
TOP_WRITES = frozenset({"DELETE", "MOVE", "COPY", "PUT"})


class WorkspaceProvider(DAVProvider):
    """Resolves ``/<workspace name>/a/b`` to resources, for the caller set by the domain controller."""

    def resource_for(self, environ, parent_path: str, workspace, node: Node, parent_key: str):
        path = util.join_uri(parent_path, node.name)
        key_path = f"{parent_key.rstrip('/')}/{node.name}"
        kind = FolderResource if node.is_folder else FileResource
        return kind(path, environ, workspace=workspace, node=node, key_path=key_path)

    def get_resource_inst(self, path: str | None, environ: dict):
        self._count_get_resource_inst += 1
        if path is None:  # the parent of "/" (WsgiDAV asks for it before a write there)
            return None
        names = [name for name in path.split("/") if name]
        if not names:
            return WorkspacesCollection("/", environ)
        display, workspace = _workspaces(environ).get(names[0])
        if workspace is None:
            return None
        node = Node.objects.filter(pk=workspace.root_id).first()
        if node is None:
            return None
        node.permission = ROLE_PERMISSION.get(workspace.role)
        resource = FolderResource(f"/{display}", environ, workspace=workspace, node=node, key_path=f"/{workspace.pk}")
        for name in names[1:]:
            if not isinstance(resource, FolderResource):
                return None
            try:
                child = child_get(parent=resource.node, name=name)
            except ServiceError:
                return None
            if child is None:
                return None
            resource = self.resource_for(environ, resource.path, workspace, child, resource.key_path)
        return resource

    def is_readonly(self):
        return False

    def custom_request_handler(self, environ, start_response, default_handler):
        # A lock is its principal's, compared as an exact string: WsgiDAV's is the user name as
        # typed at login, which accepts the e-mail in any case (casefolded, so "ß" is "ss" too).
        # The account's own e-mail makes a lock its account's, however it is spelt, and never
        # another account's whose e-mail folds to the same.
        user = environ.get(USER_KEY)
        if user is not None:
            environ["wsgidav.user_name"] = environ["wsgidav.auth.user_name"] = user.email
        # A PROPFIND without Depth means infinity (RFC 4918 §9.1): a whole tree in one answer.
        if environ["REQUEST_METHOD"] == "PROPFIND" and environ.get("HTTP_DEPTH", "infinity").lower() == "infinity":
            raise DAVError(
                HTTP_FORBIDDEN,
                context_info="PROPFIND with Depth: infinity is refused; ask with Depth: 0 or 1.",
                err_condition=PRECONDITION_CODE_PropfindFiniteDepth,
            )
        # "/" lists the caller's workspaces and is no folder of any: nothing there can be deleted,
        # moved, copied or written. (WsgiDAV went on to ask for the parent of "/", None, and a
        # DELETE, given one, would have walked into every workspace.)
        if environ["REQUEST_METHOD"] in TOP_WRITES and not environ.get("PATH_INFO", "").strip("/"):
            raise DAVError(HTTP_FORBIDDEN, context_info="This collection lists your workspaces; it cannot be changed.")
        # A lock exists to keep others from writing (RFC 4918 §6), and PROPPATCH writes dead
        # properties every member sees: both are writes, though WsgiDAV asks only its lock and
        # property managers. A viewer who could LOCK the workspace's root would shut every WebDAV
        # writer out of it for weeks. (A LOCK of an unmapped URL creates a file: that path checks.)
        if environ["REQUEST_METHOD"] in ("LOCK", "PROPPATCH"):
            resource = self.get_resource_inst(environ["PATH_INFO"], environ)
            if isinstance(resource, _NodeResource):
                try:
                    resource._editable(resource.node)
                except (ServiceError, Http404) as error:
                    raise dav_error(error) from error
        return default_handler(environ, start_response)
