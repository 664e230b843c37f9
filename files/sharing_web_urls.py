"""Dashboard routes of sharing (included under /app/)."""

from django.urls import path

from files import sharing_web

urlpatterns = [
    path("w/<uuid:workspace_id>/links/", sharing_web.workspace_links_page, name="files_links"),
    path(
        "w/<uuid:workspace_id>/links/<uuid:link_id>/revoke/",
        sharing_web.workspace_link_revoke,
        name="files_link_revoke",
    ),
    path("w/<uuid:workspace_id>/links/policy/", sharing_web.workspace_link_policy, name="files_link_policy"),
]
