#!/usr/bin/env python
"""A bounded schemathesis run against a live server (.ci/run's PostgreSQL + Redis pass).

    .venv/bin/python tests/security/schemathesis_ci.py [--max-examples 8] [--seconds 300]

Starts a throw-away gunicorn (bench/harness.py: its own var dir, local disks, a verified user with
a personal access token; on PostgreSQL when DATABASE_URL is set, in a fresh database dropped
afterwards), then runs schemathesis over every operation of /api/v1/schema/ authenticated as that
user, with the checks "no 5xx" (not_a_server_error) and "a documented response matches its schema"
(response_schema_conformance). Exit status 0 only when schemathesis found nothing; its report and
the server's log are printed otherwise. Not collected by pytest (no test_ prefix): it is a CI step.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.harness import bench_database, instance  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=8, help="examples per operation and phase")
    parser.add_argument("--seconds", type=int, default=300, help="wall-clock limit of the schemathesis run")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL")
    database = bench_database(database_url, suffix="_schemathesis") if database_url else nullcontext(None)
    with database as url, instance(database_url=url, extra_env={"THROTTLE_ANON": "100000/min"}) as server:
        # Real ids for the path parameters: the caller's workspace and its root folder, so the
        # operations on them reach their logic instead of stopping at a 404 for a random id.
        config = server.var / "schemathesis.toml"
        config.write_text(
            f'[parameters]\n"path.workspace_id" = "{server.workspace}"\n"path.node_id" = "{server.root}"\n'
        )
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{server.url}/api/v1/schema/",
            "--url",
            server.url,
            "--header",
            f"Authorization: Bearer {server.token}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            str(args.max_examples),
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "30",
            "--generation-deterministic",
            # Revoking a token is the one call that can end the run's own authentication (the
            # token's id is in the token list schemathesis reads); it is covered by the unit tests.
            "--exclude-path",
            "/api/v1/auth/tokens/{token_id}/",
        ]
        print("$", " ".join(c if "Bearer" not in c else "Authorization: Bearer …" for c in command), flush=True)
        try:
            result = subprocess.run(command, cwd=ROOT, timeout=args.seconds, check=False)
        except subprocess.TimeoutExpired:
            print(f"schemathesis did not finish within {args.seconds} s", file=sys.stderr)
            return 1
        if result.returncode != 0:
            print("--- server log (tail) ---")
            print((server.var / "gunicorn.log").read_text()[-6000:])
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
