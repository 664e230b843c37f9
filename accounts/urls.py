from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("workspaces/new/", views.workspace_create, name="workspace_create"),
    path("workspaces/<uuid:workspace_id>/", views.workspace_detail, name="workspace_detail"),
    path("workspaces/<uuid:workspace_id>/invite/", views.workspace_invite, name="workspace_invite"),
    path(
        "workspaces/<uuid:workspace_id>/invitations/<uuid:invitation_id>/revoke/",
        views.workspace_invitation_revoke,
        name="workspace_invitation_revoke",
    ),
    path(
        "workspaces/<uuid:workspace_id>/members/<uuid:member_id>/role/",
        views.workspace_member_role,
        name="workspace_member_role",
    ),
    path(
        "workspaces/<uuid:workspace_id>/members/<uuid:member_id>/remove/",
        views.workspace_member_remove,
        name="workspace_member_remove",
    ),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<uuid:token_id>/revoke/", views.token_revoke_view, name="token_revoke"),
]
