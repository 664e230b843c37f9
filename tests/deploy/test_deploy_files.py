"""deploy/ checked as far as this machine allows (Docker cannot pull images here): the compose file
sets only documented settings, runs only commands that exist with arguments they accept, the image
is slim, non-root and pinned, and Debian's nginx accepts the proxy configuration."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands, load_command_class

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
APP_IMAGE = "cloudstorage:latest"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def documented() -> set[str]:
    """Every variable named in a row of a README settings table."""
    names = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        cell = re.match(r"^\| ((?:`[A-Z][A-Z0-9_]+`(?:, )?)+) \|", line)
        if cell:
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", cell.group(1)))
    return names


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def app_services() -> dict:
    return {name: service for name, service in compose()["services"].items() if service.get("image") == APP_IMAGE}


def env_example() -> set[str]:
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (DEPLOY / ".env.example").read_text(), re.M)) | set(
        re.findall(r", ([A-Z][A-Z0-9_]+)=", (DEPLOY / ".env.example").read_text())
    )


def test_every_variable_the_stack_sets_is_a_documented_setting():
    settings_names = documented()
    assert {"web1", "web2", "worker", "beat", "init"} <= set(app_services())
    for name, service in app_services().items():
        assert service["env_file"] == ".env"
        undocumented = set(service["environment"]) - settings_names
        assert not undocumented, f"{name} sets undocumented {sorted(undocumented)}"
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)\}", (DEPLOY / "docker-compose.yml").read_text()))
    assert interpolated - settings_names == set()
    assert env_example() - settings_names == set()


def test_the_env_example_lists_every_setting_of_the_readme():
    assert documented() - env_example() == set()


def _expand(text: str) -> str:
    return re.sub(r"\$\{([A-Z0-9_]+)\}", "10", text)  # any value: only the shape is checked here


def _check_command(argv: list[str]) -> None:
    if argv[:2] == ["python", "manage.py"]:
        name, args = argv[2], argv[3:]
        assert name in get_commands(), f"no manage.py command {name}"
        command = load_command_class(get_commands()[name], name)
        command.create_parser("manage.py", name).parse_args(args)  # exits (fails the test) on a bad flag
    elif argv[0] == "celery":
        celery = Path(sys.executable).parent / "celery"
        assert argv[1:3] == ["-A", "cloudstorage"] and argv[3] in ("worker", "beat")
        help_text = subprocess.run(
            [str(celery), "-A", "cloudstorage", argv[3], "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for flag in (a for a in argv[4:] if a.startswith("--")):
            assert flag in help_text, f"celery {argv[3]} has no {flag}"
    elif argv[0] == "gunicorn":
        assert argv[1] == "cloudstorage.wsgi" and (ROOT / "cloudstorage" / "wsgi.py").exists()
    else:
        raise AssertionError(f"unexpected command {argv}")


def _dockerfile_cmd() -> list[str]:
    line = [ln for ln in (DEPLOY / "Dockerfile").read_text().splitlines() if ln.startswith("CMD ")][-1]
    return yaml.safe_load(line.removeprefix("CMD "))


def test_every_command_the_stack_runs_exists_and_accepts_its_arguments():
    for _name, service in app_services().items():
        command = service.get("command") or _dockerfile_cmd()
        if command[:2] == ["sh", "-c"]:
            for step in _expand(command[2]).split("&&"):
                _check_command(shlex.split(step))
        else:
            _check_command(command)


def test_the_image_is_slim_non_root_pinned_and_collects_static_files():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert "pip install -r requirements.txt" in dockerfile and "collectstatic --noinput" in dockerfile
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        requirement = line.split("#")[0].strip()
        if requirement:
            assert "==" in requirement, f"{requirement} is not pinned"


@pytest.mark.skipif(not Path(NGINX).exists(), reason="needs Debian's nginx (`make test` installs it)")
def test_debian_nginx_accepts_the_proxy_configuration(tmp_path):
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    # Only what cannot exist outside compose is replaced: the nodes' host names and the mount point.
    conf = conf.replace("web1:8000", "127.0.0.1:8001").replace("web2:8000", "127.0.0.1:8002")
    conf = conf.replace("/etc/nginx/cloudstorage/proxy.conf", str(DEPLOY / "nginx" / "proxy.conf"))
    conf = conf.replace("/tmp/", f"{tmp_path}/")
    (tmp_path / "nginx.conf").write_text(conf)
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def _queues(argv: list[str]) -> set[str]:
    """The queues a ``celery worker`` command line consumes (Celery's default when none is named)."""
    for flag in ("-Q", "--queues"):
        if flag in argv:
            return set(argv[argv.index(flag) + 1].split(","))
    return {"celery"}


def test_every_routed_queue_has_a_worker_in_the_stack_and_the_procfile(settings):
    # Disk probes and standby activation are routed to their own queue: a stack without a consumer
    # of it would never notice a failed disk.
    routed = {"celery"} | {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    stack = [service.get("command") or [] for service in app_services().values()]
    procfile = [shlex.split(line.partition(":")[2]) for line in (ROOT / "Procfile").read_text().splitlines() if line]
    for where, commands in (("docker-compose.yml", stack), ("Procfile", procfile)):
        workers = [argv for argv in commands if "worker" in argv and any(a.endswith("celery") for a in argv)]
        consumed = set().union(*(_queues(argv) for argv in workers)) if workers else set()
        assert routed <= consumed, f"{where}: no worker consumes {sorted(routed - consumed)}"
