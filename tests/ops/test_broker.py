"""The embedded default's broker (cloudstorage/broker.py): a consumer never sees a half-written message,
and a message it cannot decode is set aside instead of stopping the worker (the fault run's
"Unrecoverable error: JSONDecodeError", kombu issue #1551)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty

import pytest
from kombu import Connection

from cloudstorage.broker import Transport

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def channel(tmp_path):
    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }
    with Connection("filesystem://", transport=Transport, transport_options=options) as connection:
        yield connection.channel()


def test_a_consumer_polling_while_messages_are_written_gets_every_message_whole(channel):
    # kombu's own transport fails this within a few hundred messages: the consumer takes a file
    # that the producer has created but not yet written, and json.loads raises.
    count = 3000
    payload = {"body": "x" * 2000, "headers": {}, "properties": {}}
    received, errors = [], []

    def produce():
        for n in range(count):
            channel._put("celery", {**payload, "n": n})

    def consume():
        deadline = time.monotonic() + 120
        while len(received) < count and time.monotonic() < deadline:
            try:
                received.append(channel._get("celery")["n"])
            except Empty:
                continue
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)
                return

    consumers = [threading.Thread(target=consume) for _ in range(2)]
    producer = threading.Thread(target=produce)
    for thread in (*consumers, producer):
        thread.start()
    producer.join(120)
    for thread in consumers:
        thread.join(120)

    assert errors == []
    assert sorted(received) == list(range(count))


def test_an_undecodable_message_is_set_aside_and_the_next_one_delivered(channel, tmp_path):
    queue = tmp_path / "queue"
    # Names sort before any the transport makes (those start with the monotonic clock in ms, never 0).
    (queue / "0_1_empty.celery.msg").write_bytes(b"")  # what a writer killed mid-message leaves
    (queue / "0_2_garbage.celery.msg").write_bytes(b"{not json")
    channel._put("celery", {"body": "after", "headers": {}, "properties": {}})

    assert channel._get("celery")["body"] == "after"
    aside = sorted(p.read_bytes() for p in (tmp_path / "processed" / "undecodable").iterdir())
    assert aside == [b"", b"{not json"]
    assert not any(queue.iterdir())
    with pytest.raises(Empty):
        channel._get("celery")


def test_the_embedded_default_uses_it(tmp_path):
    """Settings as `make run` builds them (no REDIS_URL, whatever this test pass runs on): Celery's
    connection uses our transport."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="cloudstorage.settings",
        CLOUDSTORAGE_VAR_DIR=str(tmp_path),
        DEBUG="0",
        CLOUDSTORAGE_EMBEDDED="1",  # as `make run` sets it: keys under var/
    )
    code = (
        "import django; django.setup()\n"
        "from cloudstorage.celery import app\n"
        "print(type(app.connection_for_write().transport).__module__)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "cloudstorage.broker"
