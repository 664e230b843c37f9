from django.apps import AppConfig


class DisksConfig(AppConfig):
    name = "disks"
