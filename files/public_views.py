"""The public link pages (no login): /s/{token}, /s/{token}/download and /s/{token}/upload.

Plain Django views. The token is resolved by files.access.link_get_for_token (404 unknown or in the
trash, 410 revoked, expired, out of downloads or made by someone who lost access to its item); a
password-protected link is unlocked for the browser session by the password form; bytes stream from
the chunk store, never whole in memory.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from cloudstorage.client_address import client_address
from cloudstorage.csp import USER_CONTENT_POLICY
from cloudstorage.errors import ServiceError
from disks.store import StoreError, manifest_open
from files.access import LinkGone, link_get_for_token, link_node_get, link_shows_content
from files.api.content import RangeNotSatisfiable, byte_range
from files.content import contents_hold
from files.links import (
    link_count_download,
    link_folder_listing,
    link_password_check,
    link_touch,
    link_unlock_proof,
    link_upload,
    link_upload_reserve,
)
from files.models import Node, PublicLink
from files.names import content_disposition
from files.previews import preview_kind, preview_response, thumbnail_response
from files.thumbnails import thumbnail_node_ids
from files.uploadhandler import UploadBatch, multipart_parse, request_length
from files.vault_rules import plaintext_size, vault_of
from files.zips import folder_zip

# Refusals about the owner's account (free space, payment state, disks): a stranger sending files
# through a file request learns only that the folder cannot take them now; the owner sees why in
# the dashboard. Other refusals are about the sender's own files (a bad name, a broken form).
OWNER_SIDE_REFUSALS = {"quota_exceeded", "workspace_read_only", "storage_full", "storage_unavailable"}
CANNOT_TAKE_FILES = "This folder cannot take these files right now. Let the person who sent you this link know."

GONE_MESSAGES = {
    "revoked": "The owner has switched this link off.",
    "expired": "This link has expired.",
    "exhausted": "This link has reached its download limit.",
    "creator_lost_access": "The person who shared this link no longer has access to it.",
}


def _session_key(link: PublicLink) -> str:
    return f"files.link.{link.pk}"


def _unlocked(request: HttpRequest, link: PublicLink) -> bool:
    return not link.password_hash or request.session.get(_session_key(link)) == link_unlock_proof(link=link)


def _client(request: HttpRequest) -> str:
    return client_address(request)


def _gone(request: HttpRequest, reason: str) -> HttpResponse:
    return render(
        request,
        "files/public/gone.html",
        {"message": GONE_MESSAGES.get(reason, "This link no longer works.")},
        status=410,
    )


def public_page(view):
    """Anyone may hold a link, so an unknown or trashed one gets the site's own "not found" page,
    never Django's debug page (which the embedded default's DEBUG would show)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Http404:
            return render(request, "404.html", status=404)

    return wrapper


def _page_url(token: str, folder: str | None = None) -> str:
    url = reverse("public_link", args=[token])
    return f"{url}?{urlencode({'folder': folder})}" if folder else url


@public_page
@require_http_methods(["GET", "HEAD", "POST"])
def link_page(request: HttpRequest, token: str) -> HttpResponse:
    """The link's page: the password form while locked; then the file, the folder listing (with
    zip download) or, for a file request, the upload form."""
    try:
        link = link_get_for_token(token=token)
    except LinkGone as gone:
        return _gone(request, gone.reason)
    folder_id = request.GET.get("folder") or ""
    if request.method == "POST":
        try:
            ok = link_password_check(link=link, password=request.POST.get("password", ""), client=_client(request))
        except ServiceError as error:
            return render(
                request, "files/public/password.html", {"link": link, "error": error.message}, status=error.status_code
            )
        if not ok:
            return render(request, "files/public/password.html", {"link": link, "error": "Wrong password."}, status=403)
        request.session.cycle_key()
        request.session[_session_key(link)] = link_unlock_proof(link=link)
        return HttpResponseRedirect(_page_url(token, folder_id))
    if not _unlocked(request, link):
        return render(request, "files/public/password.html", {"link": link})
    link_touch(link=link)
    context: dict = {"link": link, "token": token}
    if link.permission == PublicLink.Permission.UPLOAD:
        context["received"] = request.GET.get("received")
        return render(request, "files/public/upload.html", context)
    node = link_node_get(link=link, node_id=folder_id)
    context["node"] = node
    if node.is_file and node.current_version_id and link_shows_content(link=link):
        context["preview"] = preview_kind(node.mime_type)  # the node's copy: no query for the version
    if node.is_folder:
        context["listing"] = link_folder_listing(link=link, folder=node)
        with_thumbnail = (
            thumbnail_node_ids(node_ids=[child.pk for child in context["listing"]])
            if link_shows_content(link=link)
            else set()
        )
        for child in context["listing"]:
            child.has_thumbnail = child.pk in with_thumbnail
        context["breadcrumbs"] = _breadcrumbs(link=link, node=node)
    elif link.has_vaults and vault_of(node=node) is not None:
        # Ciphertext: the page decrypts it with the key in the link's fragment (vault-link.js).
        context["plain_size"] = plaintext_size(node.size) or 0
        return render(request, "files/public/vault_link.html", context)
    return render(request, "files/public/link.html", context)


def _breadcrumbs(*, link: PublicLink, node: Node) -> list[Node]:
    # link_node_get read the trail while checking that the node lies inside the link: no query here.
    return [Node(pk=pk, parent_id=parent_id, name=name) for pk, parent_id, name in node.link_trail]


@public_page
@require_http_methods(["GET", "HEAD"])
def link_download(request: HttpRequest, token: str) -> HttpResponse:
    """The link's file, a file inside its folder (``?node=``), or a folder as a streamed zip."""
    try:
        link = link_get_for_token(token=token)
    except LinkGone as gone:
        return _gone(request, gone.reason)
    if link.permission != PublicLink.Permission.VIEW:
        return render(request, "files/public/gone.html", {"message": "This link only takes uploads."}, status=404)
    if not _unlocked(request, link):
        return HttpResponseRedirect(_page_url(token))
    node = link_node_get(link=link, node_id=request.GET.get("node") or "")
    if node.is_file and node.current_version_id is None:
        return render(request, "files/public/gone.html", {"message": "This file has no content yet."}, status=404)
    span = None
    if node.is_file:
        try:
            span = byte_range(request.headers.get("Range", ""), node.current_version.size)
        except RangeNotSatisfiable:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{node.current_version.size}"
            return response
    # Every GET counts, a Range too (else ranges would get round the limit); a HEAD (a link
    # preview, a checker) does not.
    if request.method == "GET":
        try:
            link_count_download(link=link, what=node)
        except ServiceError as error:
            return _gone(request, "exhausted") if error.status_code == 410 else HttpResponse(status=error.status_code)
    if node.is_folder:
        return _zip_response(node)
    return _file_response(node, span=span, head=request.method == "HEAD")


def _link_file(request: HttpRequest, token: str) -> Node | HttpResponse:
    """The unlocked view link's file named by ``?node=`` (the link's own file without it), or the
    response to send instead."""
    try:
        link = link_get_for_token(token=token)
    except LinkGone as gone:
        return _gone(request, gone.reason)
    if link.permission != PublicLink.Permission.VIEW or not _unlocked(request, link):
        raise Http404
    node = link_node_get(link=link, node_id=request.GET.get("node") or "")
    if not node.is_file or node.current_version_id is None:
        raise Http404
    node.link = link
    return node


@public_page
@require_http_methods(["GET", "HEAD"])
@xframe_options_sameorigin
def link_preview(request: HttpRequest, token: str) -> HttpResponse:
    """A file of the link shown in its page (image, PDF, text, video and audio with Range).

    A link with a download limit shows no preview: every byte it gives counts as a download."""
    node = _link_file(request, token)
    if isinstance(node, HttpResponse):
        return node
    if not link_shows_content(link=node.link):
        raise Http404
    return preview_response(request, node)


@public_page
@require_http_methods(["GET"])
def link_thumbnail(request: HttpRequest, token: str) -> HttpResponse:
    """A file's thumbnail in a folder link's listing (none with a download limit, as previews)."""
    node = _link_file(request, token)
    if isinstance(node, HttpResponse):
        return node
    if not link_shows_content(link=node.link):
        raise Http404
    return thumbnail_response(node)


def _file_response(node: Node, *, span: tuple[int, int] | None, head: bool) -> HttpResponse:
    version = node.current_version
    start, end = span or (0, version.size)
    try:
        body = iter(()) if head else manifest_open(manifest=version.manifest, start=start, end=end)
    except StoreError:
        return HttpResponse("This file cannot be read right now; try again later.", status=503)
    response = StreamingHttpResponse(
        body, status=206 if span else 200, content_type=version.mime_type or "application/octet-stream"
    )
    response["Content-Length"] = str(end - start)
    if span:
        response["Content-Range"] = f"bytes {start}-{end - 1}/{version.size}"
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = content_disposition(node.name)
    response["ETag"] = f'"{version.sha256}"'
    response["X-Content-Type-Options"] = "nosniff"
    # As API downloads: an HTML or SVG file behind a public link must not run in the site's origin.
    response["Content-Security-Policy"] = USER_CONTENT_POLICY
    response["Cache-Control"] = "private, no-store"
    return response


def _zip_response(folder: Node) -> HttpResponse:
    try:
        archive = folder_zip(folder=folder)
    except ServiceError as error:
        return HttpResponse(error.message, status=error.status_code, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(archive, content_type="application/zip")
    response["Content-Length"] = str(len(archive))
    response["Content-Disposition"] = content_disposition(f"{folder.name or 'files'}.zip")
    response["Cache-Control"] = "private, no-store"
    return response


@public_page
@csrf_exempt  # CSRF is checked by _link_upload_receive, on the fields the streaming parse found
@require_POST
def link_upload_view(request: HttpRequest, token: str) -> HttpResponse:
    """A file request: store each posted ``file`` in the link's folder, never overwriting.

    Files stream into the chunk store as the body arrives (files.uploadhandler), as on the API:
    never held in memory nor spooled to a temporary file by Django's default handlers. A request
    brings at most CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_REQUEST files (400) and a link takes at most
    CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_HOUR (429 while the hour's rest is too small; 400 for a
    request of more files than that, which no hour takes); either way none of the request's files is
    kept."""
    try:
        link = link_get_for_token(token=token)
    except LinkGone as gone:
        return _gone(request, gone.reason)
    if link.permission != PublicLink.Permission.UPLOAD:
        return render(request, "files/public/gone.html", {"message": "This link does not take uploads."}, status=404)
    if not _unlocked(request, link):
        return HttpResponseRedirect(_page_url(token))
    length = request_length(request.META)
    batch = UploadBatch(
        resolve_workspace=lambda: link.node.workspace,
        body_length=length,
        # More files than an hour takes could never be received: refused (400) as they arrive, before
        # their bytes are stored, as those over the per-request number are.
        max_files=min(
            settings.CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_REQUEST, settings.CLOUDSTORAGE_UPLOAD_LINK_FILES_PER_HOUR
        ),
    )
    received = 0
    try:
        try:
            if request.content_type == "multipart/form-data":
                # Parsed here, as the API parses (the request then holds what Django's own parse of
                # request.POST / request.FILES would have set; anything else Django parses itself).
                request._post, request._files = multipart_parse(
                    content_type=request.META.get("CONTENT_TYPE", ""),
                    length=length,
                    stream=request,
                    batch=batch,
                    encoding=request.encoding or settings.DEFAULT_CHARSET,
                )
            response = _link_upload_receive(request)
            if response.status_code != 204:
                return response  # the CSRF check refused the request
            if not batch.uploads:
                return render(
                    request,
                    "files/public/upload.html",
                    {"link": link, "token": token, "error": "Choose a file."},
                    status=400,
                )
            link_upload_reserve(link=link, count=len(batch.uploads))  # none kept unless all may come
            contents_hold([upload.content for upload in batch.uploads])  # none kept unless all fit
            for upload in batch.uploads:
                upload.committed = True  # link_upload commits it or discards it
                # The first commit decides the whole link again now that the body has arrived (its
                # creator's access too); the next ones re-read only its row, under lock.
                link_upload(link=link, name=upload.name, content=upload.content, creator_checked=received > 0)
                received += 1
        except LinkGone as gone:  # revoked or expired while the body arrived: nothing more is kept
            return _gone(request, gone.reason)
        except ServiceError as error:
            message = CANNOT_TAKE_FILES if error.code in OWNER_SIDE_REFUSALS else error.message
            return render(
                request,
                "files/public/upload.html",
                {"link": link, "token": token, "error": message, "received": received},
                status=error.status_code,
            )
    finally:
        batch.discard_uncommitted()
    return HttpResponseRedirect(f"{reverse('public_link', args=[token])}?{urlencode({'received': received})}")


@csrf_protect
def _link_upload_receive(request: HttpRequest) -> HttpResponse:
    """204 when the CSRF check passes on the parsed form (a 403 when it fails)."""
    request.FILES  # noqa: B018 - the parse is the point
    return HttpResponse(status=204)
