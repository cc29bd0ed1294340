"""Request helpers the blueprints share: the JSON body, the idempotency key, what the client wants, error pages."""

from __future__ import annotations

from flask import render_template, request

from api import auth
from api.errors import APIError, json_error
from shared.store import jobs


class BadRequest(ValueError):
    """A request a page cannot answer (bad ids, filters); the message is shown to the user (400)."""


def json_body() -> dict:
    """The request's JSON object; 400 for anything else (no body, a list, malformed or absurdly deep JSON)."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # absurdly deep nesting
        body = None
    if not isinstance(body, dict):
        raise APIError(400, "body must be a JSON object (Content-Type: application/json)")
    return body


def idempotency_key() -> str | None:
    """The request's Idempotency-Key, scoped to its token: another token reusing it never finds this one's job."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 200 and key.isprintable()):
        raise APIError(400, "Idempotency-Key must be 1-200 printable characters")
    return jobs.scoped_key(auth.caller().name, key)


def wants_html() -> bool:
    """A browser asking for the page (JSON for API clients, whose Accept is */* or application/json)."""
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def error_page(status: int, message: str):
    """On a page's URL: a friendly page for people, the API's JSON error for clients that ask for JSON."""
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        return json_error(status, message)
    return render_template("error.html", status=status, message=message), status


def not_found(exc: LookupError):
    """On an API URL that also serves a page: the 404 page for a browser, the JSON error otherwise."""
    if wants_html():
        return render_template("error.html", status=404, message=str(exc)), 404
    return json_error(404, str(exc))
