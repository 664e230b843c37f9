from django.urls import path, register_converter

from files.api import changes, content, nodes, search, stars, uploads, usage, vaults, versions, zipdl


class AnyNameConverter:
    """Any non-empty text, even with (encoded) "/", newline or NUL: the name rules judge it (400),
    where a narrower pattern would answer a confusing 404."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyNameConverter, "anyname")

urlpatterns = [
    path("nodes/<uuid:node_id>/", nodes.node_detail, name="api_node"),
    path("nodes/<uuid:node_id>/copy/", nodes.node_copy_view, name="api_node_copy"),
    path("nodes/<uuid:node_id>/children/", nodes.ChildrenView.as_view(), name="api_node_children"),
    path("nodes/<uuid:node_id>/children/<anyname:name>", uploads.child_put, name="api_node_child_put"),
    path("nodes/<uuid:node_id>/content", content.node_content, name="api_node_content"),
    path("nodes/<uuid:node_id>/zip", zipdl.node_zip, name="api_node_zip"),
    path("nodes/<uuid:node_id>/star/", stars.node_star, name="api_node_star"),
    path("starred/", stars.starred_list, name="api_starred"),
    path("nodes/<uuid:node_id>/versions/", versions.version_list, name="api_node_versions"),
    path("nodes/<uuid:node_id>/versions/<int:number>/", versions.version_detail, name="api_node_version"),
    path(
        "nodes/<uuid:node_id>/versions/<int:number>/restore/",
        versions.version_restore_view,
        name="api_node_version_restore",
    ),
    path("workspaces/<uuid:workspace_id>/changes/", changes.workspace_changes, name="api_changes"),
    path("nodes/<uuid:node_id>/vault/", vaults.node_vault, name="api_node_vault"),
    path("vaults/", vaults.vault_create_view, name="api_vaults"),
    path("vaults/<uuid:vault_id>/", vaults.vault_detail, name="api_vault"),
    path("vaults/<uuid:vault_id>/key", vaults.vault_key, name="api_vault_key"),
    path("workspaces/<uuid:workspace_id>/search/", search.workspace_search, name="api_search"),
    path("workspaces/<uuid:workspace_id>/usage/", usage.usage, name="api_usage"),
    path("workspaces/<uuid:workspace_id>/usage/file-types/", usage.usage_file_types, name="api_usage_file_types"),
    path("workspaces/<uuid:workspace_id>/version-policy/", versions.version_policy, name="api_version_policy"),
]
