"""Rate limits over real HTTP with the counters in the test Redis: 429 with Retry-After, then served again; admin
tokens exempt; a limiter store that is down refuses nothing."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
import requests
from support import LiveAPI, admin_token, bearer, new_token, token_client

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


@pytest.fixture
def flood_limited(db_url, redis_url, data_root):
    """401s limited to 5 per 30 s per address, in the test Redis; its counters are removed afterwards, so other
    tests from 127.0.0.1 are not refused."""
    api = LiveAPI(db_url, "redis://127.0.0.1:1/0", data_root,
                  {"RATELIMIT_STORAGE_URI": redis_url, "RATE_LIMIT_UNAUTHORIZED": "5 per 30 seconds"})
    yield api
    api.close()
    store = redis.Redis.from_url(redis_url)
    for key in store.scan_iter("LIMITS:*unauthorized*"):
        store.delete(key)


def test_bad_token_and_tokenless_floods_are_429_per_address(flood_limited):
    """The probe's 400 bad-token writes and 400 token-less ones all got 401; past the limit they are 429."""
    url = flood_limited.url
    bad, nothing = {"Authorization": "Bearer not-a-token"}, {}
    codes = [requests.post(f"{url}/jobs", json=BAD, headers=h, timeout=30).status_code for h in (bad, nothing) * 3]
    assert codes == [401] * 5 + [429], codes
    r = requests.post(f"{url}/jobs", json=BAD, headers=bad, timeout=30)
    assert r.status_code == 429 and "without a valid API token" in r.json()["error"]["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert requests.get(f"{url}/healthz", timeout=30).status_code in (200, 503)  # probes are never refused
    login = requests.post(f"{url}/login", data={"token": "guess"}, timeout=30)  # nor is sign-in a way around it
    assert login.status_code == 429


def test_retry_after_only_on_429_and_503(limited, db_url):
    alice = bearer(new_token(db_url)[1])
    ok = requests.get(f"{limited.url}/jobs", headers=alice, timeout=30)
    refused = requests.post(f"{limited.url}/jobs", json=BAD, headers=alice, timeout=30)
    for r in (ok, refused):  # counted: the limit's headers, but no Retry-After (the probe saw `60` on a 201)
        assert r.status_code in (200, 422) and "X-RateLimit-Remaining" in r.headers
        assert "Retry-After" not in r.headers, (r.status_code, r.headers)


def test_a_database_outage_keeps_its_documented_retry_after(redis_url, data_root):
    """A counted read during a database outage: Retry-After stays 5 s (it was the limiter's window, 27-55 s)."""
    from werkzeug.serving import make_server

    from api import create_app

    app = create_app({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nothing", "DATA_DIR": data_root,
                      "BROKER_URL": "redis://127.0.0.1:1/0", "RATELIMIT_STORAGE_URI": redis_url,
                      "RATE_LIMIT_READS": "1000 per minute"})
    server = make_server("127.0.0.1", 0, app, threaded=True)  # no LiveAPI: it makes an admin token in the database
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = requests.get(f"http://127.0.0.1:{server.server_port}/jobs", timeout=30)
        assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.headers
    finally:
        server.shutdown()


def test_a_broker_outage_503_says_when_to_retry(db_url, data_root):
    from api import create_app

    app = create_app({"DATABASE_URL": db_url, "DATA_DIR": data_root, "BROKER_URL": "redis://127.0.0.1:1/0"})
    r = token_client(app, admin_token(db_url)).post("/jobs", json={"preset": "mnist-fc"})
    assert r.status_code == 503 and "broker is unreachable" in r.json["error"]["message"], r.data
    assert r.headers["Retry-After"] == "5"
