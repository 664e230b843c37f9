"""API routes of sharing, public links, the trash and activity (included once in cloudstorage/urls.py)."""

from django.urls import path

from files.api import activity, links, sharing, trash

urlpatterns = [
    path("nodes/<uuid:node_id>/shares/", sharing.node_shares, name="api_node_shares"),
    path("shares/<uuid:share_id>/", sharing.share_detail, name="api_share"),
    path("shared-with-me/", sharing.shared_with_me, name="api_shared_with_me"),
    path("nodes/<uuid:node_id>/links/", links.node_links, name="api_node_links"),
    path("links/<uuid:link_id>/", links.link_detail, name="api_link"),
    path("workspaces/<uuid:workspace_id>/links/", links.workspace_links, name="api_workspace_links"),
    path("workspaces/<uuid:workspace_id>/link-policy/", links.link_policy, name="api_link_policy"),
    path("workspaces/<uuid:workspace_id>/trash/", trash.workspace_trash, name="api_trash"),
    path("trash/<uuid:node_id>/restore/", trash.trash_restore_view, name="api_trash_restore"),
    path("trash/<uuid:node_id>/", trash.trash_delete, name="api_trash_item"),
    path("workspaces/<uuid:workspace_id>/activity/", activity.workspace_activity, name="api_activity"),
]
