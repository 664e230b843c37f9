"""WebDAV at /dav/ against a real gunicorn (two workers, as `make run`): the contract (token auth, one
collection per workspace, errors as in the REST API, versions, trash, conditional writes), then the
real clients: litmus's basic, copymove, props, locks and http suites, and an rclone round trip of
1,000 files with unicode names whose second sync transfers nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from bench.harness import instance

EMAIL = "bench@example.com"

SETUP = r"""
import json
from accounts.models import Membership, User, Workspace
from accounts.services import token_create, workspace_create_team
from files.models import Node

owner = User.objects.get(email="bench@example.com")
team = workspace_create_team(owner=owner, name="Personal")  # the same name as the personal workspace
viewer = User.objects.create_user(email="viewer@example.com", password="a-long-viewer-password-42")
Membership.objects.create(workspace=team, user=viewer, role=Membership.Role.VIEWER)
outsider = User.objects.create_user(email="outsider@example.com", password="a-long-outsider-password-42")
print(json.dumps({
    "team": str(team.pk),
    "viewer": token_create(user=viewer, name="dav").raw,
    "outsider": token_create(user=outsider, name="dav").raw,
}))
"""


@pytest.fixture(scope="module")
def server():
    with instance(workers=2, threads=8) as live:
        live.extra = json.loads(live.python(SETUP).strip().splitlines()[-1])
        yield live


class Dav:
    def __init__(self, server, email: str, secret: str):
        self.base = server.url + "/dav"
        self.auth = "Basic " + base64.b64encode(f"{email}:{secret}".encode()).decode()

    def __call__(self, method: str, path: str, body: bytes = b"", **headers) -> tuple[int, dict, bytes]:
        headers = {key.replace("_", "-"): value for key, value in headers.items()}
        request = urllib.request.Request(
            self.base + quote(path), data=body or None, method=method, headers={"Authorization": self.auth, **headers}
        )
        if body == b"" and method == "PUT":
            request.data = b""
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the local server
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def dav(server):
    return Dav(server, EMAIL, server.token)


def api(server, method: str, path: str) -> dict:
    request = urllib.request.Request(
        server.url + path, method=method, headers={"Authorization": f"Bearer {server.token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local server
        return json.loads(response.read() or b"{}")


def hrefs(body: bytes) -> list[str]:
    return re.findall(r"<ns0:href>([^<]*)</ns0:href>", body.decode())


def test_propfind_lists_one_collection_per_workspace_and_numbers_a_duplicate_name(dav):
    status, _, body = dav("PROPFIND", "/", Depth="1")
    assert status == 207
    assert sorted(hrefs(body)) == ["/dav/", "/dav/Personal%20(2)/", "/dav/Personal/"]
    assert b"quota-available-bytes" in body and b"quota-used-bytes" in body


def test_the_account_password_is_refused_and_a_token_of_another_account_too(server):
    assert Dav(server, EMAIL, "a-long-bench-password-42")("PROPFIND", "/", Depth="0")[0] == 401
    assert Dav(server, "viewer@example.com", server.token)("PROPFIND", "/", Depth="0")[0] == 401
    assert Dav(server, EMAIL, "")("PROPFIND", "/", Depth="0")[0] == 401


def test_an_outsider_sees_no_workspace_of_others(server):
    outsider = Dav(server, "outsider@example.com", server.extra["outsider"])
    status, _, body = outsider("PROPFIND", "/", Depth="1")
    assert status == 207 and "/dav/Personal%20(2)/" not in hrefs(body)
    assert outsider("GET", "/Personal (2)/")[0] == 404


def test_a_viewer_may_read_but_not_write(server, dav):
    viewer = Dav(server, "viewer@example.com", server.extra["viewer"])
    assert dav("PUT", "/Personal (2)/team.txt", b"team")[0] == 201
    # The viewer's own personal workspace is "Personal" too, so the team's is "Personal (2)" for them as well.
    assert viewer("GET", "/Personal (2)/team.txt")[2] == b"team"
    status, _, body = viewer("PUT", "/Personal (2)/team.txt", b"mine")
    assert status == 403 and b"permission" in body
    assert viewer("DELETE", "/Personal (2)/team.txt")[0] == 403
    assert viewer("MKCOL", "/Personal (2)/new")[0] == 403
    assert dav("GET", "/Personal (2)/team.txt")[2] == b"team"


LOCK_BODY = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    b"<D:locktype><D:write/></D:locktype><D:owner>viewer</D:owner></D:lockinfo>"
)


def test_a_viewer_may_not_lock_nor_write_properties(server, dav):
    """A lock keeps others from writing, so it is a write: a viewer's exclusive depth-infinity LOCK
    of the workspace's root would have shut every WebDAV writer out of it for weeks (423 Locked),
    and only the viewer held the token. Nor may a viewer set dead properties every member sees."""
    viewer = Dav(server, "viewer@example.com", server.extra["viewer"])
    assert dav("PUT", "/Personal (2)/locked.txt", b"team")[0] == 201
    for path in ("/Personal (2)/", "/Personal (2)/locked.txt"):
        status, _, body = viewer(
            "LOCK", path, LOCK_BODY, Content_Type="application/xml", Depth="infinity", Timeout="Infinite"
        )
        assert status == 403 and b"permission" in body, (path, status)
    status, _, body = viewer(
        "PROPPATCH",
        "/Personal (2)/locked.txt",
        b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x"><D:set><D:prop>'
        b"<Z:note>a viewer's</Z:note></D:prop></D:set></D:propertyupdate>",
        Content_Type="application/xml",
    )
    assert status == 403
    _, _, props = dav("PROPFIND", "/Personal (2)/locked.txt", Depth="0")
    assert b"a viewer's" not in props
    # The owner still writes, and may lock.
    assert dav("PUT", "/Personal (2)/locked.txt", b"two")[0] == 204
    status, headers, _ = dav("LOCK", "/Personal (2)/locked.txt", LOCK_BODY, Content_Type="application/xml")
    assert status == 200
    assert dav("UNLOCK", "/Personal (2)/locked.txt", Lock_Token=headers["Lock-Token"])[0] == 204


def test_a_refused_copy_or_move_with_overwrite_leaves_the_destination_in_place(server, dav):
    """Overwrite: T trashes the destination first; when the copy is then refused (507: it does not
    fit), the destination must still be where it was, as after any refused request."""
    assert dav("PUT", "/Personal/src.bin", os.urandom(200_000))[0] == 201
    assert dav("PUT", "/Personal/dest.txt", b"precious destination")[0] == 201
    usage = api(server, "GET", f"/api/v1/workspaces/{server.workspace}/usage/")
    holder = urllib.request.Request(  # a resumable upload holds all but 100 kB of the quota
        server.url + "/api/v1/uploads/",
        method="POST",
        headers={
            "Authorization": f"Bearer {server.token}",
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(usage["free_bytes"] - 100_000),
            "Upload-Metadata": "filename " + base64.b64encode(b"big.iso").decode(),
        },
    )
    with urllib.request.urlopen(holder, timeout=30) as response:  # noqa: S310 - the local server
        location = response.headers["Location"]
    try:
        copy = dav("COPY", "/Personal/src.bin", Destination=f"{server.url}/dav/Personal/dest.txt", Overwrite="T")
        assert copy[0] == 507
        assert dav("GET", "/Personal/dest.txt")[2] == b"precious destination"
    finally:
        end = urllib.request.Request(
            urllib.parse.urljoin(server.url, location),
            method="DELETE",
            headers={"Authorization": f"Bearer {server.token}", "Tus-Resumable": "1.0.0"},
        )
        urllib.request.urlopen(end, timeout=30).close()  # noqa: S310 - the local server


def test_overwrite_is_a_new_version_and_delete_moves_to_the_trash(server, dav):
    assert dav("PUT", "/Personal/v.txt", b"one")[0] == 201
    status, headers, _ = dav("PUT", "/Personal/v.txt", b"two")
    assert status == 204 and headers["ETag"] == f'"{hashlib.sha256(b"two").hexdigest()}"'
    listing = api(server, "GET", f"/api/v1/nodes/{server.root}/children/")["results"]
    node = next(item for item in listing if item["name"] == "v.txt")
    assert node["version"] == 2
    assert dav("DELETE", "/Personal/v.txt")[0] == 204
    trash = api(server, "GET", f"/api/v1/workspaces/{server.workspace}/trash/")["results"]
    assert node["id"] in [item["id"] for item in trash]


def test_get_streams_with_range_etag_and_last_modified(dav):
    data = os.urandom(3 * 1024 * 1024 + 17)
    assert dav("PUT", "/Personal/big.bin", data)[0] == 201
    status, headers, body = dav("GET", "/Personal/big.bin")
    assert status == 200 and body == data
    assert headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"' and headers["Last-Modified"].endswith("GMT")
    status, headers, body = dav("GET", "/Personal/big.bin", Range="bytes=2097150-2097160")
    assert status == 206 and body == data[2097150:2097161]


def test_if_match_with_a_stale_etag_is_412_and_keeps_the_file(dav):
    dav("PUT", "/Personal/c.txt", b"mine")
    assert dav("PUT", "/Personal/c.txt", b"theirs", If_Match=f'"{hashlib.sha256(b"old").hexdigest()}"')[0] == 412
    assert dav("PUT", "/Personal/c.txt", b"again", If_None_Match="*")[0] == 412
    assert dav("GET", "/Personal/c.txt")[2] == b"mine"
    assert dav("PUT", "/Personal/c.txt", b"next", If_Match=f'"{hashlib.sha256(b"mine").hexdigest()}"')[0] == 204


def test_bad_names_are_400_with_the_reason(dav):
    status, _, body = dav("PUT", "/Personal/bad\x01name", b"x")
    assert status == 400 and b"invalid_name" in body


def test_over_quota_is_507_and_stores_nothing(server, dav):
    server.python(
        "from accounts.models import Workspace\n"
        f"workspace = Workspace.objects.get(pk='{server.workspace}')\n"
        "Workspace.objects.filter(pk=workspace.pk).update(used_bytes=workspace.quota_bytes - 10)"
    )
    try:
        status, _, body = dav("PUT", "/Personal/too-big.bin", b"x" * 100)
        assert status == 507 and b"quota_exceeded" in body
        assert dav("GET", "/Personal/too-big.bin")[0] == 404
    finally:
        server.python(
            f"from accounts.models import Workspace\nWorkspace.objects.filter(pk='{server.workspace}').update(used_bytes=0)"
        )


def test_propfind_depth_infinity_is_refused(dav):
    status, _, body = dav("PROPFIND", "/Personal/")
    assert status == 403 and b"propfind-finite-depth" in body
    assert dav("PROPFIND", "/Personal/", Depth="infinity")[0] == 403


def test_move_and_copy_are_rename_move_and_copy(server, dav):
    dav("MKCOL", "/Personal/m")
    dav("PUT", "/Personal/m/a.txt", b"a")
    destination = server.url + "/dav/Personal/m/b.txt"
    assert dav("MOVE", "/Personal/m/a.txt", Destination=destination)[0] in (201, 204)
    assert dav("GET", "/Personal/m/b.txt")[2] == b"a" and dav("GET", "/Personal/m/a.txt")[0] == 404
    assert dav("COPY", "/Personal/m", Destination=server.url + "/dav/Personal/m2")[0] in (201, 204)
    assert dav("GET", "/Personal/m2/b.txt")[2] == b"a"


# --- Real clients ---------------------------------------------------------------------------------

LITMUS_SUITES = {"basic": 16, "copymove": 13, "props": 30, "locks": 41, "http": 4}


def _needs(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: `make davclients` installs it (Debian package {binary})")
    return path


def test_litmus_suites_pass(server, tmp_path):
    litmus = _needs("litmus")
    result = subprocess.run(
        [litmus, server.url + "/dav/Personal/", EMAIL, server.token],
        env={**os.environ, "TESTS": " ".join(LITMUS_SUITES)},
        cwd=tmp_path,
        capture_output=True,
        timeout=600,
    )
    out = result.stdout.decode(errors="replace")
    summaries = dict(re.findall(r"summary for `(\w+)': of (\d+) tests run: \d+ passed, 0 failed", out))
    assert {suite: int(count) for suite, count in summaries.items()} == LITMUS_SUITES, out[-3000:]
    assert "SKIPPED" not in out, out[-3000:]


RCLONE_FILES = 1000
UNICODE = ["é", "日本語", "Ωmega", "straße", "😀", "niño", "привет", "中文", "Ünïcödé", "ﬁ ligature"]


def _rclone(server, *args: str) -> str:
    env = {
        **os.environ,
        "RCLONE_CONFIG_DAV_TYPE": "webdav",
        "RCLONE_CONFIG_DAV_URL": server.url + "/dav/Personal",
        "RCLONE_CONFIG_DAV_VENDOR": "other",
        "RCLONE_CONFIG_DAV_USER": EMAIL,
    }
    rclone = _needs("rclone")
    env["RCLONE_CONFIG_DAV_PASS"] = subprocess.run(
        [rclone, "obscure", server.token], capture_output=True, text=True, check=True
    ).stdout.strip()
    result = subprocess.run(
        [rclone, *args, "--transfers", "8", "--checkers", "8", "-v", "--config", "/dev/null"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def test_rclone_round_trip_of_1000_unicode_files_and_a_second_sync_transfers_nothing(server, tmp_path):
    source, back = tmp_path / "source", tmp_path / "back"
    rng = random.Random(15)
    for n in range(RCLONE_FILES):
        folder = source / f"{n % 10} {UNICODE[n % 10]}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file {n} {UNICODE[(n * 7) % 10]}.bin").write_bytes(rng.randbytes(rng.randint(0, 3000)))
    _rclone(server, "sync", str(source), "dav:rclone")
    _rclone(server, "sync", "dav:rclone", str(back))
    assert _tree(back) == _tree(source)
    log = _rclone(server, "sync", str(source), "dav:rclone")
    assert "There was nothing to transfer" in log, log[-3000:]


def _tree(root: Path) -> dict:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}
