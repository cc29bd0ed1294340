"""Send the due notifications: one JSON POST each, to an allowed host only, redirects not followed (a 3xx is a
failed attempt: a redirect could lead anywhere), retried with backoff by the store's schedule."""

from __future__ import annotations

import logging

import requests

from shared.lab.notify import allowed
from shared.store import notify
from shared.store.db import session_scope

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5.0  # connect and read, per attempt: well inside the store's hold on a claimed delivery


def post(delivery: notify.Delivery) -> tuple[int | None, str | None]:
    """(HTTP status, error) of one attempt; never raises."""
    if not allowed(delivery.url):  # the admin may have removed the host since the submit
        return None, "host no longer allowed (CNNLAB_NOTIFY_HOSTS)"
    headers = {"X-Cnnlab-Notification": str(delivery.payload["notification_id"]),
               "X-Cnnlab-Attempt": str(delivery.attempt), "User-Agent": "cnnlab-notify"}
    try:
        r = requests.post(delivery.url, json=delivery.payload, headers=headers, timeout=TIMEOUT_SECONDS,
                          allow_redirects=False)
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return r.status_code, None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}"


def deliver_due() -> int:
    """Make ended jobs' and sweeps' notifications due, send every due one; returns how many were attempted.
    Never raises: a database that is down leaves them for the next round."""
    try:
        with session_scope() as s:
            notify.mark_ended(s)
            due = notify.claim_due(s)
        for d in due:
            code, error = post(d)
            with session_scope() as s:
                status = notify.record(s, d.id, code=code, error=error)
            log.info("notification %s attempt %s to %s: %s (%s)", d.id, d.attempt, d.url, status, error or code)
        return len(due)
    except Exception as exc:  # noqa: BLE001 - the database is down: the next round tries again
        log.warning("could not send notifications: %s", exc)
        return 0
