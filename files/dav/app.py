"""The WebDAV endpoint at ``/dav/`` (class 1 and 2): WsgiDAV with our provider, served by the same
gunicorn processes as the site (cloudstorage/wsgi.py hands it every ``/dav/`` request).

Authentication is HTTP Basic with the account's e-mail and a personal access token, never the
password (so accounts with two-factor sign-in work the same, and a token can be revoked alone).
PROPFIND with Depth infinity is refused (403 propfind-finite-depth, as RFC 4918 allows).

Nothing served here is a page of the site: ``/dav/`` runs before Django's middleware, on the site's
origin, and a browser follows a link with Basic credentials in its userinfo
(``https://mail%40x:TOKEN@drive/dav/...``), so an uploaded HTML or SVG file served inline would run
its script with the visitor's session cookie. Every answer gets the sandbox policy API downloads
send and ``nosniff`` (:class:`DavDispatcher`), and a file's bytes come as an attachment
(:meth:`files.dav.provider.FileResource.finalize_headers`).
"""

from __future__ import annotations

from django.db import close_old_connections
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.wsgidav_app import WsgiDAVApp

from accounts.services import token_authenticate
from cloudstorage.csp import USER_CONTENT_POLICY
from files.dav.provider import USER_KEY, ClientHrefLockManager, WorkspaceProvider
from files.dav.storage import DbLockStorage, DbPropertyManager

MOUNT = "/dav"
REALM = "cloudstorage"
# Added to every WebDAV answer (see the module's docstring); Django's SecurityMiddleware and CSP
# middleware, which add them to the rest of the site, never see these requests.
USER_CONTENT_HEADERS = [("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", USER_CONTENT_POLICY)]


class TokenDomainController(BaseDomainController):
    """Basic auth: the e-mail as user name, a personal access token as password."""

    def get_domain_realm(self, path_info, environ):
        return REALM

    def require_authentication(self, realm, environ):
        return True

    def basic_auth_user(self, realm, user_name, password, environ):
        token = token_authenticate(raw=password or "")
        if token is None or token.user.email.casefold() != (user_name or "").casefold() or not token.user.is_active:
            return False
        environ[USER_KEY] = token.user
        return True

    def supports_http_digest_auth(self):
        return False


def dav_app_create():
    config = {
        "mount_path": MOUNT,
        "provider_mapping": {"/": WorkspaceProvider()},
        "http_authenticator": {
            "domain_controller": TokenDomainController,
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "lock_storage": DbLockStorage(),
        "property_manager": DbPropertyManager(),
        "block_size": 1024 * 1024,
        "dir_browser": {"enable": False},
        "suppress_version_info": True,
        "verbose": 1,
        "logging": {"enable": True},
    }
    app = WsgiDAVApp(config)
    # WsgiDAV takes no lock manager class from its configuration: ours (a 423 names the caller's
    # href, not the lock's storage key) replaces the one it built, on a storage of its own (the one
    # it built closes its storage when it goes).
    lock_manager = ClientHrefLockManager(DbLockStorage(), mount=MOUNT)
    app.lock_manager = lock_manager
    for provider in app.provider_map.values():
        provider.set_lock_manager(lock_manager)
    return app


class DavDispatcher:
    """Sends ``/dav`` and everything below it to WsgiDAV, the rest to Django; WsgiDAV's requests get
    Django's per-request database hygiene (stale connections closed before and after) and the
    headers that keep users' bytes from running in the site's origin."""

    def __init__(self, django_app):
        self.django_app = django_app
        self.dav_app = None

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path != MOUNT and not path.startswith(MOUNT + "/"):
            return self.django_app(environ, start_response)
        if self.dav_app is None:
            self.dav_app = dav_app_create()
        # WsgiDAV expects its mount point in SCRIPT_NAME, as a WSGI server mounting it there would set.
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + MOUNT
        environ["PATH_INFO"] = path[len(MOUNT) :] or "/"
        close_old_connections()

        def start_dav_response(status, headers, exc_info=None):
            if status.startswith("304"):
                # WsgiDAV sends its 304 with Content-Length: 0, which tells a cache that keeps the
                # 304's headers that the file is empty; RFC 9110 §8.6 allows only the 200's length,
                # or none. None: the 200's would cost a lookup of the file for a header a client
                # does not need (it has the 200). The API's 304 sends the 200's (files/api/content.py).
                headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
            present = {name.lower() for name, _ in headers}
            extra = [(name, value) for name, value in USER_CONTENT_HEADERS if name.lower() not in present]
            return start_response(status, [*headers, *extra], exc_info)

        try:
            body = self.dav_app(environ, start_dav_response)
            # WsgiDAV answers lazily: the request runs (and start_response is called) when the first
            # block is asked for. Asking now keeps the body read inside BodyReadTimeout's limit and
            # gives it the status it waits for, like a Django response.
            blocks = iter(body)
            first = next(blocks, None)
        except BaseException:
            close_old_connections()
            raise
        return _ClosingBody(body, blocks, first)


class _ClosingBody:
    def __init__(self, body, blocks, first):
        self.body = body
        self.blocks = blocks
        self.first = first

    def __iter__(self):
        if self.first is not None:
            yield self.first
        yield from self.blocks

    def close(self):
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            close_old_connections()
