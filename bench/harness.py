"""A throw-away instance of the service under gunicorn: its own var dir (SQLite by default), local
disks, one user with a token. Used by bench/api.py and by the live concurrency test."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

SETUP = r"""
import json, sys
import django
django.setup()
from allauth.account.models import EmailAddress
from django.conf import settings
from accounts.models import User, Workspace
from accounts.services import token_create
from disks.services import disk_create_local
from files.models import Node

plan_gb, capacity = int(sys.argv[1]), int(sys.argv[2])
for category in "ABCDE":
    for n in (1, 2):
        disk_create_local(name=f"{category}{n}", path=settings.CLOUDSTORAGE_DISKS_DIR / f"{category}{n}",
                          category=category, capacity_bytes=capacity)
user = User.objects.create_user(email="bench@example.com", password="a-long-bench-password-42")
EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
workspace = Workspace.objects.get(owner=user, kind="personal")
Workspace.objects.filter(pk=workspace.pk).update(plan_gb=plan_gb)
root = Node.objects.get(workspace=workspace, parent__isnull=True)
print(json.dumps({"token": token_create(user=user, name="bench").raw, "root": str(root.pk),
                  "workspace": str(workspace.pk)}))
"""


@dataclass
class Instance:
    url: str
    token: str
    root: str
    workspace: str
    var: Path
    env: dict
    master_pid: int

    def worker_pids(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def python(self, code: str, *args: str) -> str:
        """Run Python with Django set up for this instance; returns its stdout."""
        return subprocess.run(
            [sys.executable, "-c", "import django; django.setup()\n" + code, *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def instance(
    *,
    workers: int = 1,
    threads: int = 8,
    database_url: str | None = None,
    plan_gb: int = 10,
    disk_capacity: int = 64 * 1024**3,
    extra_env: dict | None = None,
    tmp_dir: Path | None = None,
    port: int | None = None,
    start_timeout: float = 30,
):
    var = Path(tempfile.mkdtemp(prefix="cloudstorage-bench-", dir=tmp_dir))
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "CLOUDSTORAGE_VAR_DIR": str(var),
            "DJANGO_SETTINGS_MODULE": "cloudstorage.settings",
            # As `make run` serves: DEBUG off (DEBUG on also records every query), keys under var/.
            "DEBUG": "0",
            "CLOUDSTORAGE_EMBEDDED": "1",
            "THROTTLE_USER": "1000000/min",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra_env or {})
    server = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
        out = subprocess.run(
            [sys.executable, "-c", SETUP, str(plan_gb), str(disk_capacity)],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        info = json.loads(out.strip().splitlines()[-1])
        port = port or free_port()
        log = open(var / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "cloudstorage.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "3600",
                "--config",
                str(ROOT / "gunicorn.conf.py"),
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                urllib.request.urlopen(url + "/api/v1/workspaces/", timeout=2).read()  # noqa: S310 - local
                break
            except urllib.error.HTTPError:
                break  # 401: it answers
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start: " + (var / "gunicorn.log").read_text()[-2000:])
                time.sleep(0.2)
        yield Instance(url=url, env=env, var=var, master_pid=server.pid, **info)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(var, ignore_errors=True)


class bench_database:  # noqa: N801 - a context manager
    """A fresh PostgreSQL database next to DATABASE_URL's (``<name><suffix>``), dropped afterwards.
    Created and dropped from the server's ``postgres`` database when DATABASE_URL's own does not exist."""

    def __init__(self, url: str, suffix: str = "_bench"):
        self.url = url
        parts = urlsplit(url)
        self.name = parts.path.lstrip("/") + suffix
        self.bench_url = parts._replace(path="/" + self.name).geturl()
        self.maintenance_url = parts._replace(path="/postgres").geturl()

    def _admin(self):
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.OperationalError:
            return psycopg.connect(self.maintenance_url, autocommit=True)

    def __enter__(self) -> str:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self.bench_url

    def __exit__(self, *exc) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
