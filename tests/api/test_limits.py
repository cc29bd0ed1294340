"""Rate limits over real HTTP with the counters in the test Redis: 429 with Retry-After, then served again; admin
tokens exempt; a limiter store that is down refuses nothing."""

from __future__ import annotations

import socket
import time

import pytest
import redis
import requests
from support import LiveAPI, bearer, new_token

BAD = {"preset": "no-such-preset"}  # a write answered 422 at once: counted, and nothing is stored


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def limited(db_url, redis_url, data_root):
    api = LiveAPI(db_url, "redis://127.0.0.1:1/0", data_root,
                  {"RATELIMIT_STORAGE_URI": redis_url, "RATE_LIMIT_WRITES": "3 per 2 seconds",
                   "RATE_LIMIT_READS": "1000 per minute"})
    yield api
    api.close()


def test_writes_past_the_limit_are_429_with_retry_after_then_served_again(limited, db_url, redis_url):
    alice, bob = (bearer(new_token(db_url)[1]) for _ in range(2))
    post = lambda h: requests.post(f"{limited.url}/jobs", json=BAD, headers=h, timeout=30)
    assert [post(alice).status_code for _ in range(3)] == [422] * 3
    r = post(alice)
    assert r.status_code == 429, r.text
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= 2 and "at most 3 per 2 second" in r.json()["error"]["message"]
    assert post(bob).status_code == 422  # counted per token
    assert requests.get(f"{limited.url}/jobs", headers=alice, timeout=30).status_code == 200  # reads count apart
    assert any(k.startswith(b"LIMITS:LIMITER/cnnlab") for k in redis.Redis.from_url(redis_url).scan_iter("LIMITS:*"))  # in Redis
    time.sleep(wait)
    assert post(alice).status_code == 422


def test_admin_tokens_are_exempt(limited):
    assert {limited.post("/jobs", json=BAD).status_code for _ in range(8)} == {422}


def test_a_limiter_store_that_is_down_refuses_nothing(db_url, data_root):
    api = LiveAPI(db_url, "redis://127.0.0.1:1/0", data_root,
                  {"RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        alice = bearer(new_token(db_url)[1])
        codes = [requests.post(f"{api.url}/jobs", json=BAD, headers=alice, timeout=30).status_code for _ in range(5)]
        assert codes == [422] * 5
        assert requests.get(f"{api.url}/jobs", timeout=30).status_code == 200
    finally:
        api.close()
