"""A folder as a zip, streamed as it is built (zipstream-ng): no temporary file, bounded memory."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request

from cloudstorage.errors import ServiceError
from files.access import node_get_for_user
from files.names import content_disposition
from files.zips import folder_zip


@extend_schema(
    responses={
        (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The folder as a zip (stored)."),
    },
    summary="Download a folder as a streamed zip",
    description="Members are the folder's live files and empty folders under the folder's own name; items in the "
    "trash are left out. Content-Length is known up front (no compression).",
)
@api_view(["GET", "HEAD"])
def node_zip(request: Request, node_id):
    folder = node_get_for_user(user=request.user, node_id=node_id)
    if not folder.is_folder:
        raise ServiceError(code="not_a_folder", message="Only a folder is downloaded as a zip.", status_code=400)
    zip_stream = folder_zip(folder=folder)
    response = StreamingHttpResponse(
        iter(zip_stream) if request.method != "HEAD" else iter(()), content_type="application/zip"
    )
    response["Content-Length"] = str(len(zip_stream))
    response["Content-Disposition"] = content_disposition(f"{folder.name or 'files'}.zip")
    response["Cache-Control"] = "private, no-cache"
    return response
