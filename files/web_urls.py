"""Dashboard pages, included under /app/."""

from django.urls import path

from files import vault_web, web

urlpatterns = [
    path("files/", web.files_home, name="files_home"),
    path("switch/", web.workspace_switch, name="workspace_switch"),
    path("shared/", web.shared_page, name="files_shared"),
    path("starred/", web.starred_page, name="files_starred"),
    path("settings/", web.settings_page, name="app_settings"),
    path("open/<uuid:node_id>/", web.node_open, name="files_open"),
    path("preview/<uuid:node_id>/", web.file_preview, name="files_preview"),
    path("thumbnail/<uuid:node_id>/", web.file_thumbnail, name="files_thumbnail"),
    path("w/<uuid:workspace_id>/", web.workspace_files, name="files_workspace"),
    path("w/<uuid:workspace_id>/f/<uuid:folder_id>/", web.folder_page, name="files_folder"),
    path("w/<uuid:workspace_id>/trash/", web.trash_page, name="files_trash"),
    path("w/<uuid:workspace_id>/search/", web.search_page, name="files_search"),
    path("w/<uuid:workspace_id>/recent/", web.recent_page, name="files_recent"),
    path("w/<uuid:workspace_id>/usage/", web.usage_page, name="files_usage"),
    path("vaults/new/", vault_web.vault_new, name="files_vault_new"),
    path("vaults/<uuid:vault_id>/", vault_web.vault_page, name="files_vault"),
]
