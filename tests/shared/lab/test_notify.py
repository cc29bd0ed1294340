"""Webhook URLs against the admin's allowed hosts, and the backoff between attempts."""

from __future__ import annotations

import pytest

from shared.lab.notify import NotifyRequest, allowed, backoff_seconds, check_notify
from shared.lab.specs import SpecError

HOSTS = ["hooks.example.org", "127.0.0.1:8080"]


@pytest.mark.parametrize(("url", "ok"), [
    ("https://hooks.example.org/cnnlab", True),
    ("http://HOOKS.example.org:9000/x", True),  # a bare host allows every port
    ("http://127.0.0.1:8080/hook", True),
    ("http://127.0.0.1/hook", False),  # host:port allows that port alone
    ("http://127.0.0.1:8081/hook", False),
    ("http://hooks.example.org.evil.com/", False),
    ("http://evil.com/?h=hooks.example.org", False),
    ("http://hooks.example.org@169.254.169.254/", False),  # credentials: the host is the one after '@'
    ("file:///etc/passwd", False),
    ("gopher://hooks.example.org/", False),
    ("http://hooks.example.org:notaport/", False),
])
def test_only_allowed_hosts_pass(url, ok):
    assert allowed(url, HOSTS) is ok


def test_a_refused_url_is_a_spec_error_naming_notify_url(monkeypatch):
    monkeypatch.setenv("CNNLAB_NOTIFY_HOSTS", '["hooks.example.org"]')
    assert check_notify(NotifyRequest(url="https://hooks.example.org/a")) == "https://hooks.example.org/a"
    assert check_notify(None) is None
    with pytest.raises(SpecError, match="host '10.0.0.1' is not allowed") as err:
        check_notify(NotifyRequest(url="http://10.0.0.1/"))
    assert err.value.errors[0]["field"] == "notify.url"
    monkeypatch.delenv("CNNLAB_NOTIFY_HOSTS")
    with pytest.raises(SpecError, match="notifications are off"):
        check_notify(NotifyRequest(url="https://hooks.example.org/a"))


def test_the_backoff_doubles_from_the_setting(monkeypatch):
    monkeypatch.setenv("CNNLAB_NOTIFY_RETRY_SECONDS", "10")
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
