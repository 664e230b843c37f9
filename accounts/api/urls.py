from django.urls import path

from accounts.api import tokens, workspaces

urlpatterns = [
    path("auth/token/", tokens.token_issue, name="api_token_issue"),
    path("auth/tokens/", tokens.token_list, name="api_token_list"),
    path("auth/tokens/<uuid:token_id>/", tokens.token_delete, name="api_token_delete"),
    path("workspaces/", workspaces.workspace_collection, name="api_workspaces"),
    path("workspaces/<uuid:workspace_id>/", workspaces.workspace_detail, name="api_workspace"),
    path("workspaces/<uuid:workspace_id>/members/", workspaces.member_list, name="api_members"),
    path("workspaces/<uuid:workspace_id>/members/<uuid:member_id>/", workspaces.member_detail, name="api_member"),
    path("workspaces/<uuid:workspace_id>/invitations/", workspaces.invitation_collection, name="api_invitations"),
    path(
        "workspaces/<uuid:workspace_id>/invitations/<uuid:invitation_id>/",
        workspaces.invitation_delete,
        name="api_invitation",
    ),
    path("invitations/accept/", workspaces.invitation_accept_api, name="api_invitation_accept"),
]
