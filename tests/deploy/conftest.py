"""The local S3 server of tests/disks, for the disks of the deployment tests."""

from tests.disks.conftest import _s3_server_process, s3_server  # noqa: F401 - fixtures, found by name
