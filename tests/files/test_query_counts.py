"""Query counts of the small hot requests, pinned (issue 12, item 4).

Each request runs a small, fixed number of queries: the same in a folder one level down as twelve
levels down, and the same next to one sibling as next to 150. Every test measures the request in
the shallow and in the deep (or crowded) case and requires both to be equal and at most the pinned
number, so a per-level or per-item query shows up as a failure here and not as a slow server.
"""

from __future__ import annotations

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from files.access import node_get_for_user
from files.links import link_create
from files.models import Activity, Node
from files.sharing import share_create
from tests.factories import team_workspace
from tests.files.sharing_helpers import client_for, folder, upload

DEEP = 12
# A 16 KiB upload: the request's own queries (token, access, name check, the node and version rows,
# activity, response) and, the larger part, the chunk store's write of one new chunk with two copies
# (disks/store.py); its quota taken in the commit (files/quota.py, TAKE_AT_COMMIT); and the change
# feed's entry (the workspace's row lock on PostgreSQL, the path, the insert: files/changes.py).
# 3 transactions that write: the chunk's records, its copies turned ok, the file made visible, in
# which the folder written into is locked and checked live again (files.folders.folder_lock_live).
# 35 before the small upload's quota hold, the manifest's own commit and the activity's own commit
# were folded into the others (31 before the folder's lock); one fewer on SQLite, which takes no
# row lock on the workspace.
UPLOAD = 32
# A move: the request's own queries, the node and its new parent locked together (in id order: the
# crossing moves' deadlock) and read whole, which also answers an If-Match and whether the parent is
# live, and the change feed's entry. 19 when the precondition and folder_lock_live locked the rows
# again (20 with an If-Match); one fewer on SQLite.
MOVE = 18
SMALL = b"x" * (16 * 1024)


def fresh() -> bytes:
    """16 KiB never stored before, so every upload measured writes a new chunk."""
    return os.urandom(16 * 1024)


def queries_of(request) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = request()
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)  # a download's reads happen while it streams
    assert response.status_code < 400, getattr(response, "content", b"")[:500]
    return len(captured)


def chain(user, root: Node, depth: int, prefix: str) -> Node:
    """A folder ``depth`` levels below ``root``."""
    return folder(user, root, "/".join(f"{prefix}{level}" for level in range(depth)))


@pytest.fixture
def api(api):
    api.get("/api/v1/workspaces/")  # the token's first use writes last_used_at once; not under test
    return api


@pytest.fixture
def warm(owner, root):
    """The workspace's first upload creates its data key and disk placement once; not under test."""
    upload(owner, root, "warm-up.bin", b"warm")


@pytest.fixture
def shallow(owner, root):
    return chain(owner, root, 1, "s")


@pytest.fixture
def deep(owner, root):
    return chain(owner, root, DEEP, "d")


def both(assert_max, limit: int, shallow_request, deep_request) -> None:
    with assert_max(limit):
        near = queries_of(shallow_request)
    with assert_max(limit):
        far = queries_of(deep_request)
    assert near == far, f"{near} queries near the root, {far} deep down"


def test_raw_put_of_16_kib_is_fixed(api, warm, shallow, deep, django_assert_max_num_queries):
    def put(folder_node, name):
        return lambda: api.put(
            f"/api/v1/nodes/{folder_node.pk}/children/{name}", fresh(), content_type="application/octet-stream"
        )

    both(django_assert_max_num_queries, UPLOAD, put(shallow, "a.bin"), put(deep, "a.bin"))
    # A new version of an existing file.
    both(django_assert_max_num_queries, UPLOAD, put(shallow, "a.bin"), put(deep, "a.bin"))


def test_put_of_new_content_is_fixed(api, owner, warm, shallow, deep, django_assert_max_num_queries):
    near, far = upload(owner, shallow, "f.bin", b"1"), upload(owner, deep, "f.bin", b"1")

    def put(node):
        return lambda: api.put(f"/api/v1/nodes/{node.pk}/content", fresh(), content_type="application/octet-stream")

    both(django_assert_max_num_queries, UPLOAD - 1, put(near), put(far))


def test_multipart_upload_of_one_small_file_is_fixed(api, warm, shallow, deep, django_assert_max_num_queries):
    def post(folder_node):
        return lambda: api.post(
            f"/api/v1/nodes/{folder_node.pk}/children/",
            {"file": [SimpleUploadedFile("m.bin", fresh())]},
            format="multipart",
        )

    # The body's size bounds the file's: a small one takes its quota at the commit, as a raw PUT
    # (39 statements when it was held while stored and the activity had a commit of its own).
    both(django_assert_max_num_queries, UPLOAD, post(shallow), post(deep))


def test_listing_page_is_fixed_in_depth_and_width(api, owner, shallow, deep, django_assert_max_num_queries):
    upload(owner, shallow, "one.txt", b"1")
    for n in range(150):
        folder(owner, deep, f"child{n:03}")
    tagged = upload(owner, deep, "tagged.txt", b"1")
    assert api.patch(f"/api/v1/nodes/{tagged.pk}/", {"tags": ["a", "b"]}, format="json").status_code == 200

    def listing(folder_node):
        return lambda: api.get(f"/api/v1/nodes/{folder_node.pk}/children/")

    both(django_assert_max_num_queries, 4, listing(shallow), listing(deep))


def test_listing_through_a_share_is_fixed(owner, friend, root, django_assert_max_num_queries):
    top = folder(owner, root, "shared")
    share_create(actor=owner, node=_with_permission(top), email=friend.email, permission="view")
    near = folder(owner, top, "n")
    far = folder(owner, top, "/".join(f"d{level}" for level in range(DEEP)))
    friend_api = client_for(friend)
    friend_api.get("/api/v1/workspaces/")

    def listing(folder_node):
        return lambda: friend_api.get(f"/api/v1/nodes/{folder_node.pk}/children/")

    both(django_assert_max_num_queries, 5, listing(near), listing(far))


def test_listing_through_a_reshare_costs_one_query_more(owner, friend, root, django_assert_max_num_queries):
    # A share made by a grantee works only while its creator may still edit the item
    # (files.access.share_grants): a share made by a member is decided by its creator's role, which
    # rides along with the shares' own query; a reshare needs the chain's other shares, one more
    # query whatever the depth and however many reshares lead to it.
    from tests.factories import UserFactory

    top = folder(owner, root, "shared")
    share_create(actor=owner, node=_with_permission(top), email=friend.email, permission="edit")
    second, third = UserFactory(email="second@example.com"), UserFactory(email="third@example.com")
    share_create(actor=friend, node=_with_permission_for(friend, top), email=second.email, permission="edit")
    share_create(actor=second, node=_with_permission_for(second, top), email=third.email, permission="view")
    near = folder(owner, top, "n")
    far = folder(owner, top, "/".join(f"d{level}" for level in range(DEEP)))
    clients = {user: client_for(user) for user in (friend, second, third)}
    for client in clients.values():
        client.get("/api/v1/workspaces/")

    def listing(user, folder_node):
        return lambda: clients[user].get(f"/api/v1/nodes/{folder_node.pk}/children/")

    both(django_assert_max_num_queries, 6, listing(second, near), listing(second, far))
    both(django_assert_max_num_queries, 6, listing(third, near), listing(third, far))
    assert queries_of(listing(third, near)) == queries_of(listing(friend, near)) + 1


def test_metadata_patch_is_fixed(api, owner, shallow, deep, django_assert_max_num_queries):
    near, far = upload(owner, shallow, "p.txt", b"1"), upload(owner, deep, "p.txt", b"1")

    def patch(node):
        return lambda: api.patch(f"/api/v1/nodes/{node.pk}/", {"tags": ["a", "b"], "description": "why"}, format="json")

    # + the change feed's metadata entry: the path and the insert, and on PostgreSQL the workspace's
    # row lock, taken before the path is read (once: the insert took it again before); and the node
    # read again under its lock, live (an edit of a node trashed since the request read it is a 409)
    both(django_assert_max_num_queries, 14, patch(near), patch(far))

    def rename(node, name):
        return lambda: api.patch(f"/api/v1/nodes/{node.pk}/", {"name": name}, format="json")

    # + the change feed's entry (the insert), and on PostgreSQL the workspace's row lock, taken before
    # the paths are read (the feed's path must be the one at its position; 13 when the insert took
    # it again)
    both(django_assert_max_num_queries, 12, rename(near, "q.txt"), rename(far, "q.txt"))
    deep_path = "/" + "/".join(f"d{level}" for level in range(DEEP))
    renamed = Activity.objects.filter(node=far, verb="rename").get()
    assert (renamed.path, renamed.details) == (f"{deep_path}/q.txt", {"from": f"{deep_path}/p.txt"})
    assert api.get(f"/api/v1/nodes/{far.pk}/").json()["path"] == f"{deep_path}/q.txt"


def test_copy_of_a_file_is_fixed(api, owner, shallow, deep, django_assert_max_num_queries):
    near, far = upload(owner, shallow, "c.txt", b"1"), upload(owner, deep, "c.txt", b"1")

    def copy(node, into):
        return lambda: api.post(f"/api/v1/nodes/{node.pk}/copy/", {"parent": str(into.pk)}, format="json")

    # Access to the source and the target (and whether either lies in a vault), the quota hold, the
    # copied rows, the change-feed entry, the activity and the answer: the same number at any depth.
    both(django_assert_max_num_queries, 37, copy(near, shallow), copy(far, deep))


def test_workspace_list_is_fixed_in_the_number_of_workspaces(api, owner, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        one = queries_of(lambda: api.get("/api/v1/workspaces/"))
    for n in range(5):
        team_workspace(owner, f"Team {n}")
    with django_assert_max_num_queries(2):
        six = queries_of(lambda: api.get("/api/v1/workspaces/"))
    assert len(api.get("/api/v1/workspaces/").json()) == 6
    assert one == six


def test_download_of_a_small_file_is_fixed(api, owner, shallow, deep, django_assert_max_num_queries):
    near, far = upload(owner, shallow, "d.bin", SMALL), upload(owner, deep, "d.bin", SMALL)

    def get(node):
        return lambda: api.get(f"/api/v1/nodes/{node.pk}/content")

    both(django_assert_max_num_queries, 8, get(near), get(far))


def test_public_link_page_deep_in_a_folder_link_is_fixed(owner, root, django_assert_max_num_queries):
    top = folder(owner, root, "pub")
    link = link_create(actor=owner, node=_with_permission(top))
    near_folder = folder(owner, top, "n")
    far_folder = folder(owner, top, "/".join(f"d{level}" for level in range(DEEP)))
    near_file, far_file = upload(owner, near_folder, "f.txt", b"1"), upload(owner, far_folder, "f.txt", b"1")
    client = Client()
    client.get(f"/s/{link.token}")  # the first visit logs the access once; not under test

    def page(node):
        return lambda: client.get(f"/s/{link.token}", {"folder": str(node.pk)})

    both(django_assert_max_num_queries, 5, page(near_file), page(far_file))
    # One more for a folder than a file: which children have a thumbnail (one query for them all).
    both(django_assert_max_num_queries, 7, page(near_folder), page(far_folder))

    def download(node):
        return lambda: client.get(f"/s/{link.token}/download", {"node": str(node.pk)})

    both(django_assert_max_num_queries, 13, download(near_file), download(far_file))


def test_public_link_made_by_a_grantee_costs_one_query_more(owner, friend, root, django_assert_max_num_queries):
    # A link works only while its creator may still edit its item (files.access.link_get_for_token):
    # a member's role rides along with the link's own query; a grantee's share of the item or of a
    # folder above it is one more query (the ancestors' CTE joined to the shares), at any depth.
    top = folder(owner, root, "pub")
    share_create(actor=owner, node=_with_permission(top), email=friend.email, permission="edit")
    near = upload(owner, folder(owner, top, "n"), "f.txt", b"1")
    far = upload(owner, folder(owner, top, "/".join(f"d{level}" for level in range(DEEP))), "f.txt", b"1")
    client = Client()

    def link_of(user, node):
        link = link_create(actor=user, node=node_get_for_user(user=user, node_id=node.pk, need="edit"))
        client.get(f"/s/{link.token}")  # the first visit logs the access once; not under test
        return link

    by_owner, by_friend, by_friend_far = link_of(owner, near), link_of(friend, near), link_of(friend, far)
    for route in ("", "/download"):

        def use(link, route=route):
            return lambda: client.get(f"/s/{link.token}{route}")

        owners = queries_of(use(by_owner))
        both(django_assert_max_num_queries, owners + 1, use(by_friend), use(by_friend_far))
        assert queries_of(use(by_friend)) == owners + 1


def _with_permission(node: Node) -> Node:
    return node_get_for_user(user=node.workspace.owner, node_id=node.pk, need="edit")


def _with_permission_for(user, node: Node) -> Node:
    return node_get_for_user(user=user, node_id=node.pk, need="edit")


# A tus PATCH that does not complete its upload, savepoints counted (in production each outermost one
# is a transaction: 4 that write): the token, the upload (before and after its lease), the lease, the
# creator's right to write into its folder (asked again on every PATCH), the pending manifest, the workspace's key and placement, the staged tail read back, the batch's dedup
# lookup and records, the tail staged with the copies' records, and the one transaction that saves
# the state, prunes the tails before it, keeps the manifest and frees the lease.
TUS_PATCH = 34


def test_tus_patch_is_fixed_in_the_number_of_patches_before_it(api, root, settings, django_assert_max_num_queries):
    from tests.files.test_tus import create, patch

    settings.CLOUDSTORAGE_CHUNK_AVG = 64 * 1024  # several chunks per PATCH, and a tail
    block = 256 * 1024
    location = create(api, length=8 * block, root=root)["Location"]
    offset = 0

    def send():
        nonlocal offset
        response = patch(api, location, os.urandom(block), offset=offset)
        offset += block
        return response

    send()
    with django_assert_max_num_queries(TUS_PATCH):
        second = queries_of(send)
    for _ in range(3):
        send()
    with django_assert_max_num_queries(TUS_PATCH):
        sixth = queries_of(send)
    assert second == sixth, f"{second} queries for the second PATCH, {sixth} for the sixth"


# A file request (upload link) of ten 16 KiB files: each file costs its own store writes and
# commit, as an upload does (38 a file on PostgreSQL, one fewer on SQLite, which takes no row lock on
# the workspace), and the link is decided once per request. The whole link, with its creator's role
# and, for a grantee's link, their shares (one query more; three through a reshare), is read when
# the request starts and at its first commit; each further commit reads only the link's row,
# locked (files.access.link_lock_live). Before, every commit read the whole link again: 394 and 416
# instead of 385 and 389 for the grantee's and the reshare's links (the owner's 383 either way).
LINK_FILES = 10
UPLOAD_LINK_TEN_FILES = 383


def test_upload_link_request_decides_its_creators_access_once_not_per_file(
    owner, friend, root, django_assert_max_num_queries
):
    from tests.factories import UserFactory

    top = folder(owner, root, "outer")
    inbox = folder(owner, top, "inbox")
    share_create(actor=owner, node=_with_permission(top), email=friend.email, permission="edit")
    second = UserFactory(email="second@example.com")
    share_create(actor=friend, node=_with_permission_for(friend, top), email=second.email, permission="edit")
    client = Client()

    def send(token: str, count: int):
        files = [SimpleUploadedFile(f"f{n}.bin", fresh()) for n in range(count)]
        return lambda: client.post(f"/s/{token}/upload", {"file": files})

    more_files = {}
    # The creator's access costs these more queries per request, twice (start and first commit).
    for maker, creator_queries in ((owner, 0), (friend, 1), (second, 3)):
        link = link_create(actor=maker, node=_with_permission_for(maker, inbox), permission="upload")
        queries_of(send(link.token, 1))  # the workspace's first upload makes its key and placement
        one = queries_of(send(link.token, 1))
        with django_assert_max_num_queries(UPLOAD_LINK_TEN_FILES + 2 * creator_queries):
            many = queries_of(send(link.token, LINK_FILES))
        more_files[maker.email] = many - one
    # Nine files more cost the same whoever made the link: nothing of the creator's per file.
    assert len(set(more_files.values())) == 1, more_files


def test_move_is_fixed_and_if_match_costs_nothing_more(api, owner, root, shallow, deep, django_assert_max_num_queries):
    near, far = upload(owner, shallow, "m.txt", b"1"), upload(owner, deep, "m.txt", b"1")
    into_near, into_far = folder(owner, root, "into-near"), folder(owner, root, "into-far")

    def move(node, into, **headers):
        return lambda: api.patch(f"/api/v1/nodes/{node.pk}/", {"parent": str(into.pk)}, format="json", **headers)

    def if_match(node):
        return {"HTTP_IF_MATCH": f'"{Node.objects.get(pk=node.pk).sha256}"'}

    both(django_assert_max_num_queries, MOVE, move(near, into_near), move(far, into_far))
    plain = queries_of(move(near, shallow))
    # The If-Match is answered from the row the move locks anyway.
    both(django_assert_max_num_queries, MOVE, move(near, into_near, **if_match(near)), move(far, deep, **if_match(far)))
    assert queries_of(move(near, shallow, **if_match(near))) == plain
