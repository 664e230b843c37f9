"""The queries compiled once per process (cloudstorage/compiled.py): the token, the node with the
caller's role, and a listing page return what the ORM returns, with each run's own values, in one
query; a shape whose SQL depends on its values is refused when it is built."""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiToken, Membership, token_digest
from accounts.services import _TOKEN, token_create
from cloudstorage.compiled import CompiledQuery
from files.access import _NODE_WITH_ROLE
from files.models import Node
from files.selectors import LISTING_FIELDS, children_rows
from tests.files.api_helpers import make_file, make_folder, pages_both_ways, url


def test_the_token_query_returns_the_token_and_its_user(owner, outsider):
    issued = {user: token_create(user=user, name="t").raw for user in (owner, outsider)}
    for user, raw in issued.items():
        with CaptureQueriesContext(connection) as captured:
            token = _TOKEN.first(token_hash=token_digest(raw))
        assert len(captured) == 1  # the user comes in the same query
        expected = ApiToken.objects.select_related("user").get(token_hash=token_digest(raw))
        assert token.pk == expected.pk and token.user == user
        assert token.user.email == user.email and token.prefix == expected.prefix
    assert _TOKEN.first(token_hash=token_digest("cst_unknown")) is None


def test_the_node_query_carries_each_callers_role(owner, teammate, outsider, root):
    Membership.objects.create(workspace=root.workspace, user=teammate, role=Membership.Role.VIEWER)
    child = make_folder(owner, root, "child")
    for node in (root, child):
        for user, role in ((owner, Membership.Role.OWNER), (teammate, Membership.Role.VIEWER), (outsider, None)):
            with CaptureQueriesContext(connection) as captured:
                found = _NODE_WITH_ROLE.first(node_id=node.pk, user=user)
            assert len(captured) == 1
            assert (found.pk, found.name, found.parent_id) == (node.pk, node.name, node.parent_id)
            assert found.workspace == node.workspace and found.workspace.name == node.workspace.name
            assert found.caller_role == role


def test_a_value_used_twice_fills_both_places_and_an_unused_one_is_refused(owner, root):
    folder = make_folder(owner, root, "Same")
    twice = CompiledQuery(
        lambda *, name: Node.objects.filter(name=name) | Node.objects.filter(name_key=name),
        name=Node._meta.get_field("name"),
    )
    assert twice.first(name="Same") == folder and twice.first(name="other") is None
    unused = CompiledQuery(lambda *, name: Node.objects.all(), name=Node._meta.get_field("name"))
    with pytest.raises(ValueError, match="is no parameter"):
        unused.first(name="a")


# Walking back through sizes with ties skipped an item while the cursor kept only the first ordering
# field's value and an offset (Django REST framework's), whose reversed pages miscount the offset
# among equal sizes; the position now holds the name that breaks the tie too (cloudstorage/keyset.py).
@pytest.mark.parametrize("ordering", ["name", "-name", "size", "-size", "modified", "-modified"])
def test_listing_pages_forward_and_back_match_the_orm(api, owner, root, ordering):
    for n in range(7):
        make_file(owner, root, f"f{n}.txt", b"x" * (n * 3 % 5))
    make_folder(owner, root, "folder")
    fields = {"name": ("name_key",), "size": ("size", "name_key"), "modified": ("modified_at", "name_key")}
    order = fields[ordering.lstrip("-")]
    order = tuple("-" + field for field in order) if ordering.startswith("-") else order
    expected = [row["name"] for row in children_rows(parent=root).order_by(*order)]
    # The last page's previous links walk back through the reversed, position-filtered shapes.
    assert pages_both_ways(api, url(root, f"children/?ordering={ordering}&page_size=3")) == expected


def test_a_listing_page_reads_its_rows_with_the_orms_values(api, owner, root):
    node = make_file(owner, root, "a.txt", b"hello")
    row = api.get(url(root, "children/")).json()["results"][0]
    expected = Node.objects.values(*LISTING_FIELDS).get(pk=node.pk)
    assert row["id"] == str(expected["id"]) and row["size"] == 5 and row["sha256"] == expected["sha256"]
    assert row["modified_at"] == expected["modified_at"].isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("ordering", "position"),
    [
        ("size", "abc"),
        ("modified", "not-a-time"),
        ("-size", "1e999"),
        ("size", '["abc", "a.txt"]'),
        ("-modified", '["not-a-time", "a.txt"]'),
    ],
)
def test_a_cursor_whose_position_is_no_value_is_a_404_not_a_500(api, owner, root, ordering, position):
    make_file(owner, root, "a.txt")
    cursor = base64.b64encode(f"o=0&r=0&p={position}".encode()).decode()
    response = api.get(url(root, f"children/?ordering={ordering}&cursor={cursor}"))
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid cursor"


def test_many_equal_sizes_page_forward_and_back_without_a_gap_or_a_repeat(api, owner, root):
    # 25 files of one size and 5 of another: every page but one starts among ties.
    for n in range(30):
        make_file(owner, root, f"t{n:02}.txt", b"x" * (3 if n < 25 else 7))
    expected = [row["name"] for row in children_rows(parent=root).order_by("-size", "-name_key")]
    assert pages_both_ways(api, url(root, "children/?ordering=-size&page_size=4")) == expected


def test_a_cursor_from_before_ties_were_broken_still_reads(api, owner, root):
    # Its position is the size alone: the page starts after that size, as it did.
    for n, size in enumerate((1, 2, 2, 3)):
        make_file(owner, root, f"s{n}.txt", b"x" * size)
    cursor = base64.b64encode(b"o=0&r=0&p=2").decode()
    response = api.get(url(root, f"children/?ordering=size&cursor={cursor}"))
    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == ["s3.txt"]
