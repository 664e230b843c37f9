"""The Redis cache backend (cloudstorage/redis_cache.py): one redis client per pool, shared by the
threads of a web worker, against the real Redis of CI's PostgreSQL + Redis pass."""

from __future__ import annotations

import os
import threading
import uuid

from cloudstorage.redis_cache import RedisCache
from tests.conftest import requires_redis


@requires_redis
def test_threads_share_one_client_and_see_each_others_values():
    cache = RedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": f"test-{uuid.uuid4().hex}"})
    clients, errors = [], []

    def work(n: int) -> None:
        try:
            for i in range(50):
                cache.set(f"k{n}-{i}", i, 30)
                assert cache.get(f"k{n}-{i}") == i
            clients.append(cache._cache.get_client(write=True))
            clients.append(cache._cache.get_client(write=False))
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert len(clients) == 16 and all(client is clients[0] for client in clients)
    assert cache.get_many([f"k{n}-49" for n in range(8)]) == {f"k{n}-49": 49 for n in range(8)}
    assert cache.incr("k0-1") == 2
    assert cache.add("k0-1", 5) is False
    cache.delete_many([f"k{n}-{i}" for n in range(8) for i in range(50)])
    assert cache.get("k0-1") is None
