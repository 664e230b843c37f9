"""A JSON body the API cannot take is a 400 in the one error shape, never a 500 or Django's HTML
page, and changes nothing."""

from __future__ import annotations

import pytest

from files.models import Node
from tests.files.api_helpers import make_file, url


@pytest.fixture
def routes(owner, root):
    """(method, path) of a route parsed by the default parsers and one by the children view's own."""
    node = make_file(owner, root, "a.txt")
    return node, [("PATCH", url(node)), ("POST", url(root, "children/"))]


def test_a_body_nested_too_deeply_is_a_400_parse_error(api, root, routes):
    """json.loads ran out of stack (RecursionError), which DRF's parser does not catch: a 500."""
    node, calls = routes
    body = "[" * 100_000 + "]" * 100_000
    api.raise_request_exception = False
    for method, path in calls:
        response = api.generic(method, path, body, content_type="application/json")
        assert response.status_code == 400, response.content[:300]
        error = response.json()["error"]
        assert error["code"] == "parse_error" and "nested too deeply" in error["message"]
    node.refresh_from_db()
    assert node.name == "a.txt"
    assert Node.objects.filter(parent=root).count() == 1


def test_a_body_past_the_size_limit_is_a_400_in_the_error_shape(api, root, routes, settings):
    """Django's RequestDataTooBig became its HTML "Bad Request (400)" page."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    node, calls = routes
    api.raise_request_exception = False
    for method, path in calls:
        body = '{"type": "folder", "name": "big", "description": "' + "x" * 2000 + '"}'
        response = api.generic(method, path, body, content_type="application/json")
        assert response.status_code == 400, response.content[:300]
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"] == {
            "code": "body_too_large",
            "message": "A JSON or form body has at most 1000 bytes.",
            "details": {"limit": 1000},
        }
    assert Node.objects.get(pk=node.pk).description == ""
    assert Node.objects.filter(parent=root).count() == 1
