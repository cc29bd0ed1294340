"""The one JSON error shape: {"error": {"status", "message", "details"?}}, for every failure."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as NoRoute
from werkzeug.routing import RequestRedirect

from shared.lab.specs import SpecError
from shared.store.db import DataError, InterfaceError, OperationalError, PoolTimeout
from shared.store.integrity import IntegrityError, refused
from shared.store.jobs import Conflict, NotFound

log = logging.getLogger(__name__)


class APIError(Exception):
    def __init__(self, status: int, message: str, details=None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def json_error(status: int, message: str, details=None):
    body = {"status": status, "message": message}
    if details:
        body["details"] = details
    return jsonify(error=body), status


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]


RETRY_AFTER_SECONDS = 5


def _database_unavailable(exc):
    """The database is down or locked: a 503 the client can retry, not a 500."""
    log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    body, status = json_error(503, "the database is unavailable; try again shortly")
    return body, status, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _http_error(exc: HTTPException):
    """Werkzeug's errors in our shape, keeping their headers (a 405's Allow, a 401's WWW-Authenticate)."""
    if isinstance(exc, MethodNotAllowed) and _no_such_resource():
        return json_error(404, f"no such resource: {request.path}")
    body, status = json_error(exc.code or 500, exc.description or exc.name)
    return body, status, [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]


def _no_such_resource() -> bool:
    """A 405 for a path no route takes under any method: an id past its converter's range (werkzeug tries each
    rule's converters only for the rule whose method matches, so GET /jobs/<huge id> is a 404 but PATCH a 405)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
        try:
            adapter.match(method=method)
            return False  # a route takes this path: the 405 stands
        except (MethodNotAllowed, NoRoute):
            continue
        except RequestRedirect:  # e.g. a trailing slash: the path is a route's
            return False
    return True


def _api_error(exc: APIError):
    """Our own refusals; a 503 (the broker is down) says when to retry, as the database's does."""
    body, status = json_error(exc.status, exc.message, exc.details)
    return body, status, {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else {}


def _integrity_error(exc: IntegrityError):
    """A row the database's constraints refuse: the client's values (409 when repeated, else 422), never a 500."""
    why = refused(exc)
    return json_error(409 if why.unique else 422, why.message, [{"field": f} for f in why.fields])


def register(app: Flask) -> None:
    app.register_error_handler(APIError, _api_error)
    app.register_error_handler(SpecError, lambda e: json_error(422, f"invalid spec: {e}", e.errors))
    app.register_error_handler(ValidationError, lambda e: json_error(
        422, "invalid request: " + "; ".join(f"{d['field']}: {d['message']}" for d in _field_errors(e)),
        _field_errors(e)))
    app.register_error_handler(NotFound, lambda e: json_error(404, str(e)))
    app.register_error_handler(Conflict, lambda e: json_error(409, str(e)))
    # Values the database refuses (a NUL byte in a filter, say) are the client's to fix.
    app.register_error_handler(DataError, lambda e: json_error(400, "a value in the request is not storable"))
    app.register_error_handler(IntegrityError, _integrity_error)
    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_error_handler(InterfaceError, _database_unavailable)
    app.register_error_handler(PoolTimeout, _database_unavailable)
    app.register_error_handler(HTTPException, _http_error)

    @app.errorhandler(Exception)
    def _unexpected(exc):  # a bug: log the traceback, never send it
        log.exception("unhandled error")
        return json_error(500, "internal error; the server log has the details")
