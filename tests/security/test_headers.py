"""Finding F: missing security headers.

With ``DEBUG=0`` behind TLS there was no HSTS, HTML pages had no Content-Security-Policy, and files
served through public links lacked the sandbox policy API downloads send, so an HTML or SVG file
behind a link could run script in the site's origin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from files.access import node_get_for_user
from files.links import link_create
from tests.factories import personal_workspace
from tests.files.sharing_helpers import client_for, root_of, upload

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k" * 20 + "Zq81hfT2mZ0aLp7Qs9dYw3xVb6NcEe"
MASTER_KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="


def _production_setting(name: str, tmp_path, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL"}}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; print(settings.{name})",
        ],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "cloudstorage.settings",
            "DEBUG": "0",
            "SECRET_KEY": STRONG_KEY,
            "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
            "CLOUDSTORAGE_MASTER_KEY": MASTER_KEY,
            "CLOUDSTORAGE_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_production_behind_tls_sends_hsts_by_default(tmp_path):
    assert int(_production_setting("SECURE_HSTS_SECONDS", tmp_path, BEHIND_TLS_PROXY="1")) >= 15_552_000
    assert _production_setting("SECURE_HSTS_SECONDS", tmp_path, BEHIND_TLS_PROXY="0") == "0"
    assert _production_setting("SECURE_HSTS_SECONDS", tmp_path, BEHIND_TLS_PROXY="1", SECURE_HSTS_SECONDS="60") == "60"


def test_hsts_goes_out_on_requests_the_proxy_marks_https(settings, db):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31_536_000

    over_tls = Client().get("/healthz", HTTP_X_FORWARDED_PROTO="https")
    plain = Client().get("/healthz")

    assert over_tls["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in plain


@pytest.fixture
def alice(db):
    from tests.factories import UserFactory

    return UserFactory(email="alice@example.com")


@pytest.fixture
def page(alice):
    browser = Client()
    browser.force_login(alice)
    return browser


def _pages(alice) -> list[str]:
    workspace = personal_workspace(alice)
    root = root_of(workspace)
    return [
        "/",
        "/accounts/login/",
        "/app/",
        f"/app/w/{workspace.pk}/f/{root.pk}/",
        f"/app/w/{workspace.pk}/usage/",
        f"/app/w/{workspace.pk}/search/",
        f"/app/workspaces/{workspace.pk}/plan/",
        "/app/settings/",
        "/app/shared/",
    ]


def test_html_pages_send_a_policy_without_inline_script_or_style(alice, page):
    for url in _pages(alice):
        response = page.get(url, follow=True)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["script-src"] == "'self'", url
        assert directives["style-src"] == "'self'", url
        assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'", url
        assert directives["frame-ancestors"] == "'none'", url


def test_pages_have_nothing_inline_the_policy_would_block(alice, page):
    """The policy allows no inline code, so no page may rely on any (it would silently break)."""
    for url in _pages(alice):
        html = page.get(url, follow=True).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)
        assert "<style" not in html, url
        assert not re.search(r"\sstyle=", html), url
        assert not re.search(r"\son[a-z]+=", html), url


def test_public_link_download_sends_the_same_sandbox_as_api_downloads(alice):
    workspace = personal_workspace(alice)
    evil = upload(alice, root_of(workspace), "evil.html", b"<script>alert(document.cookie)</script>")
    link = link_create(actor=alice, node=node_get_for_user(user=alice, node_id=evil.pk, need="edit"))

    public = Client().get(f"/s/{link.token}/download")
    api = client_for(alice).get(f"/api/v1/nodes/{evil.pk}/content")

    assert public.status_code == 200
    assert public["Content-Security-Policy"] == api["Content-Security-Policy"]
    assert public["Content-Security-Policy"].startswith("sandbox")
    assert public["X-Content-Type-Options"] == "nosniff"


def test_public_link_page_has_the_page_policy(alice):
    workspace = personal_workspace(alice)
    shared = upload(alice, root_of(workspace), "a.txt", b"hello")
    link = link_create(actor=alice, node=node_get_for_user(user=alice, node_id=shared.pk, need="edit"))

    response = Client().get(f"/s/{link.token}")

    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]
