"""Two web nodes behind nginx, as an operator who outgrew one machine runs them.

Real processes throughout: two gunicorn nodes (each with its own var dir, nothing shared on local
disk), one Celery worker and one beat, all on one PostgreSQL database and one Redis, with the same
master key; the disks are buckets of the local S3 server; Debian's nginx round-robins between the
nodes with deploy/nginx/proxy.conf, the rules the compose stack uses. Runs in .ci/run's PostgreSQL
+ Redis pass.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tusclient import client as tus_client

from bench.harness import bench_database, free_port
from tests.conftest import requires_redis
from tests.disks.conftest import s3_client

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
MB = 1024 * 1024
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = [
    pytest.mark.live_worker,
    requires_redis,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="needs DATABASE_URL on PostgreSQL: several nodes share one database (.ci/run's second pass)",
    ),
    pytest.mark.skipif(not Path(NGINX).exists(), reason="needs Debian's nginx (`make test` installs it)"),
]

SETUP = r"""
import json, sys
import django
django.setup()
from allauth.account.models import EmailAddress
from accounts.models import User, Workspace
from accounts.services import token_create
from disks.categories import category_for_gb
from disks.models import Disk
from disks.services import disk_attach
from files.models import Node

endpoint, buckets = sys.argv[1], sys.argv[2:]
user = User.objects.create_user(email="nodes@example.com", password="a-long-test-password-42")
EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
workspace = Workspace.objects.get(owner=user, kind="personal")
for n, bucket in enumerate(buckets, 1):
    disk_attach(disk=Disk(
        name=f"s3-{n}", backend=Disk.Backend.S3, s3_endpoint_url=endpoint, s3_bucket=bucket, s3_prefix="chunks",
        s3_region="us-east-1", s3_access_key="testing", s3_secret_key="testing",
        category=category_for_gb(workspace.plan_gb), capacity_bytes=10 * 1024**3,
    ))
root = Node.objects.get(workspace=workspace, parent__isnull=True)
print(json.dumps({"token": token_create(user=user, name="nodes").raw, "root": str(root.pk),
                  "workspace": str(workspace.pk)}))
"""

LEDGER = r"""
import json, sys
import django
django.setup()
from accounts.models import Workspace
from files.models import Node, QuotaHold, Upload
workspace = Workspace.objects.get(pk=sys.argv[1])
files = Node.objects.filter(workspace=workspace, kind="file")
print(json.dumps({
    "used_bytes": workspace.used_bytes,
    "file_bytes": sum(files.values_list("size", flat=True)),
    "uploads": sorted(Upload.objects.values_list("state", "reserved_bytes")),
    "held": sum(QuotaHold.objects.filter(workspace=workspace).values_list("bytes", flat=True)),
}))
"""


@dataclass
class Node:
    name: str
    url: str
    var: Path
    process: subprocess.Popen

    def access_log(self) -> str:
        return (self.var / "access.log").read_text()

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def serving(self) -> bool:
        """An open connection into the node right now (nginx keeps none open between requests)."""
        port = f"{urlsplit(self.url).port:04X}"
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            local, _remote, state = line.split()[1:4]
            if local.endswith(f":{port}") and state == "01":  # ESTABLISHED
                return True
        return False

    def kill(self) -> None:
        """SIGKILL the node's master and workers at once: a host that lost power."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@dataclass
class Cluster:
    proxy: str
    nodes: list[Node]
    token: str
    root: str
    workspace: str
    env: dict
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)

    def python(self, code: str, *args: str) -> dict:
        return _python_json(code, *args, env=self.env)

    def request(self, base: str, method: str, path: str, body: bytes | None = None, **headers) -> tuple[int, bytes]:
        request = urllib.request.Request(
            base + path, data=body, method=method, headers={"Authorization": f"Bearer {self.token}", **headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - loopback
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def tus(self) -> tus_client.TusClient:
        return tus_client.TusClient(self.proxy + "/api/v1/uploads/", headers={"Authorization": f"Bearer {self.token}"})

    def download(self, base: str, name: str) -> bytes:
        status, body = self.request(base, "GET", f"/api/v1/nodes/{self.root}/children/?page_size=100")
        assert status == 200, body
        (node,) = [n for n in json.loads(body)["results"] if n["name"] == name]
        status, content = self.request(base, "GET", f"/api/v1/nodes/{node['id']}/content")
        assert status == 200, content[:300]
        return content


def _python_json(code: str, *args: str, env: dict) -> dict:
    """Run Python with Django set up (the code does it) in ``env``; the JSON its last line prints."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()  # noqa: S310 - loopback
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not start: " + log.read_text()[-3000:]) from None
            time.sleep(0.2)


def _start(stack: ExitStack, argv: list[str], *, env: dict, log: Path) -> subprocess.Popen:
    handle = stack.enter_context(open(log, "wb"))  # noqa: SIM115 - closed by the stack
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    stack.callback(stop)
    return process


def _nginx_conf(tmp: Path, port: int, upstreams: list[str]) -> Path:
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / folder).mkdir()
    servers = "\n".join(f"        server {address} max_fails=1 fail_timeout=10s;" for address in upstreams)
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream cloudstorage {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        include {ROOT}/deploy/nginx/proxy.conf;
    }}
}}
"""
    )
    return conf


@contextmanager
def cluster(tmp_path: Path, s3_endpoint: str):
    database_url = os.environ["DATABASE_URL"]
    # A Redis database of its own, so no live-worker test of the suite consumes this cluster's tasks.
    redis_url = re.sub(r"/\d+$", "", os.environ["REDIS_URL"]) + "/13"
    buckets = [f"nodes-{os.urandom(6).hex()}" for _ in range(2)]
    for bucket in buckets:
        s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    with bench_database(database_url, suffix="_multinode") as url, ExitStack() as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CLOUDSTORAGE_"))}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "cloudstorage.settings",
                "DEBUG": "0",
                "SECRET_KEY": base64.b64encode(os.urandom(48)).decode(),
                "CLOUDSTORAGE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
                "DATABASE_URL": url,
                "REDIS_URL": redis_url,
                "CLOUDSTORAGE_S3_ENDPOINT_ALLOW": s3_endpoint.removeprefix("http://"),
                "CLOUDSTORAGE_CHUNK_AVG": str(256 * 1024),
                "CLOUDSTORAGE_UPLOAD_LEASE": "4",
                "THROTTLE_USER": "1000000/min",
                "PYTHONUNBUFFERED": "1",
            }
        )
        shared = {**env, "CLOUDSTORAGE_VAR_DIR": str(tmp_path / "admin")}
        (tmp_path / "admin").mkdir()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=shared, cwd=ROOT, check=True
        )
        info = _python_json(SETUP, s3_endpoint, *buckets, env=shared)

        nodes = []
        for n in (1, 2):
            var = tmp_path / f"node{n}"
            var.mkdir()
            port = free_port()
            argv = [str(BIN / "gunicorn"), "cloudstorage.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
            argv += ["--threads", "4", "--timeout", "300", "--config", str(ROOT / "gunicorn.conf.py")]
            argv += ["--access-logfile", str(var / "access.log")]
            node_env = {**env, "CLOUDSTORAGE_VAR_DIR": str(var)}
            process = _start(stack, argv, env=node_env, log=var / "gunicorn.log")
            nodes.append(Node(name=f"node{n}", url=f"http://127.0.0.1:{port}", var=var, process=process))
        for node in nodes:
            _wait_for(node.url, node.process, node.var / "gunicorn.log")

        daemons = {}
        for role, argv in {
            "worker": ["worker", "--loglevel", "INFO", "--concurrency", "1"],
            "beat": ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat" / "schedule")],
        }.items():
            var = tmp_path / role
            var.mkdir()
            daemons[role] = _start(
                stack,
                [str(BIN / "celery"), "-A", "cloudstorage", *argv],
                env={**env, "CLOUDSTORAGE_VAR_DIR": str(var)},
                log=var / f"{role}.log",
            )

        proxy_port = free_port()
        (tmp_path / "nginx").mkdir()
        conf = _nginx_conf(tmp_path / "nginx", proxy_port, [node.url.removeprefix("http://") for node in nodes])
        proxy = _start(
            stack,
            [NGINX, "-p", str(conf.parent), "-e", str(conf.parent / "error.log"), "-c", str(conf), "-g", "daemon off;"],
            env=env,
            log=conf.parent / "nginx.out",
        )
        _wait_for(f"http://127.0.0.1:{proxy_port}", proxy, conf.parent / "error.log")
        yield Cluster(proxy=f"http://127.0.0.1:{proxy_port}", nodes=nodes, env=shared, daemons=daemons, **info)


@pytest.fixture
def nodes(tmp_path, s3_server):
    with cluster(tmp_path, s3_server) as running:
        yield running


def _patches_of(node: Node, upload_path: str) -> int:
    return sum(1 for line in node.access_log().splitlines() if f'"PATCH {upload_path} ' in line)


def _stream_until_cut(url: str, path: str, token: str, body: bytes, offset: int, answer: list) -> None:
    """One PATCH sent at ~2 MB/s until the node under it dies (the proxy then closes on us)."""
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    connection.putrequest("PATCH", path)
    for name, value in {
        "Authorization": f"Bearer {token}",
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(len(body)),
    }.items():
        connection.putheader(name, value)
    connection.endheaders()
    try:
        for start in range(0, len(body), 256 * 1024):
            connection.send(body[start : start + 256 * 1024])
            time.sleep(0.12)
        response = connection.getresponse()
        answer.append((response.status, response.read()[:300]))  # never 204: that would be too early
    except OSError:
        pass  # the node died under the request: that is the point
    finally:
        connection.close()


def test_two_nodes_behind_nginx_serve_one_drive_and_survive_losing_one_mid_upload(nodes):
    # 1. A tus upload whose PATCHes alternate between the nodes.
    data = os.urandom(12 * MB + 12345)
    uploader = nodes.tus().uploader(
        file_stream=io.BytesIO(data), chunk_size=2 * MB, metadata={"filename": "alternating.bin", "parent": nodes.root}
    )
    uploader.upload()
    upload_path = urlsplit(uploader.url).path
    patches = [_patches_of(node, upload_path) for node in nodes.nodes]
    assert min(patches) >= 2, patches  # 7 PATCHes (the log's last line may not be written yet)
    assert nodes.download(nodes.proxy, "alternating.bin") == data

    # 2. Uploaded through node 1, downloaded from node 2.
    first, second = nodes.nodes
    put = os.urandom(5 * MB + 7)
    status, body = nodes.request(
        first.url, "PUT", f"/api/v1/nodes/{nodes.root}/children/via-node1.bin", put, **{"Content-Type": "x/y"}
    )
    assert status in (200, 201), body
    assert nodes.download(second.url, "via-node1.bin") == put

    # 3. The node writing a tus upload is killed mid-PATCH; the client resumes through the proxy.
    big = os.urandom(16 * MB + 4321)
    uploader = nodes.tus().uploader(
        file_stream=io.BytesIO(big), chunk_size=4 * MB, metadata={"filename": "survivor.bin", "parent": nodes.root}
    )
    uploader.upload_chunk()  # the first 4 MiB are in
    assert uploader.offset == 4 * MB
    upload_path = urlsplit(uploader.url).path
    streaming = threading.Thread(
        target=_stream_until_cut,
        args=(nodes.proxy, upload_path, nodes.token, big[4 * MB :], 4 * MB, answer := []),
        daemon=True,
    )
    streaming.start()
    deadline = time.monotonic() + 30
    while not any(node.serving() for node in nodes.nodes):
        assert time.monotonic() < deadline and streaming.is_alive(), answer
        time.sleep(0.02)
    (writer,) = [node for node in nodes.nodes if node.serving()]
    time.sleep(1.5)  # a few MiB into the chunk store; the client needs ~6 s for the whole body
    writer.kill()
    streaming.join(timeout=60)

    assert not answer or answer[0][0] != 204, answer
    resumed = nodes.tus().uploader(
        file_stream=io.BytesIO(big), url=uploader.url, chunk_size=4 * MB, retries=10, retry_delay=2
    )
    assert 4 * MB <= resumed.offset < len(big)  # the cut PATCH kept at most what was committed
    resumed.upload()
    assert nodes.download(nodes.proxy, "survivor.bin") == big
    assert hashlib.sha256(nodes.download(nodes.proxy, "alternating.bin")).digest() == hashlib.sha256(data).digest()

    # Quota is exact: every byte used is a byte of a file; no reservation or hold is left over.
    ledger = nodes.python(LEDGER, nodes.workspace)
    assert ledger["used_bytes"] == ledger["file_bytes"] == len(data) + len(put) + len(big), ledger
    assert ledger["uploads"] == [["complete", 0], ["complete", 0]] and ledger["held"] == 0, ledger

    # The worker and the one beat ran beside the nodes all along.
    for role, process in nodes.daemons.items():
        assert process.poll() is None, f"the {role} died"
