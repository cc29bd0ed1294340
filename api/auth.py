"""Who may do what: API tokens from the Bearer header or the pages' session cookie, the write and CSRF guards, /login.

Every write needs a valid token (401 without, with `WWW-Authenticate: Bearer`); reads are open unless
CNNLAB_READS_REQUIRE_TOKEN. A write authenticated by the cookie must also carry `X-Requested-With` or a JSON body,
which a cross-site form cannot send (the cookie is SameSite=Lax as well). See docs/auth.md.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session, url_for

from api.db import session as db_session
from api.errors import APIError, json_error
from shared.lab.settings import Settings
from shared.store import tokens
from shared.store.tokens import Caller, OverCap

bp = Blueprint("auth", __name__)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN = frozenset({"auth.login", "auth.login_post", "auth.logout", "meta.healthz", "meta.openapi", "static"})  # never need a token
COOKIE_DAYS = 30
CSRF_HEADER = "X-Requested-With"
LOGIN_FORM_FIELD = "login_form_token"  # the hidden field of login.html and its twin in the session cookie


class AuthError(APIError):
    """401: no usable token; answered with `WWW-Authenticate: Bearer`."""

    def __init__(self, message: str, error: str | None = None):
        super().__init__(401, message)
        self.challenge = 'Bearer realm="cnnlab"' + (f', error="{error}"' if error else "")


def init_app(app: Flask, env: Settings) -> None:
    """Sign cookies, identify every request's caller before anything else runs, and add /login and /logout."""
    if not app.config.get("SECRET_KEY"):  # Flask's default config holds SECRET_KEY=None
        app.config["SECRET_KEY"] = env.secret_key or secret_key_file(env.var_dir)
    app.config.setdefault("READS_REQUIRE_TOKEN", env.reads_require_token)
    app.config.setdefault("MAX_ACTIVE_JOBS", env.max_active_jobs)
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SECURE=env.cookie_secure, PERMANENT_SESSION_LIFETIME=timedelta(days=COOKIE_DAYS))
    app.before_request(identify)
    app.context_processor(lambda: {"caller": g.get("caller")})
    app.register_error_handler(AuthError, _unauthorized)
    app.register_error_handler(OverCap, lambda e: json_error(429, str(e), {"cap": e.cap, "active": e.active - e.adding,
                                                                           "adding": e.adding}))
    app.register_blueprint(bp)


def secret_key_file(var_dir: Path) -> str:
    """The key in VAR_DIR/secret_key, made once (0600): every gunicorn worker and restart signs alike."""
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        tmp = var_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic: of workers starting together, the first link wins and all read its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def identify() -> None:
    """Set g.caller (None: anonymous) and g.via; refuse what needs a token the request lacks."""
    g.caller, g.via = None, None
    if request.routing_exception is not None:  # no such route or method: its 404/405 says more than a 401
        return
    if request.endpoint in OPEN:
        with contextlib.suppress(AuthError):  # a bad token does not block the login page or the health check
            g.caller, g.via = _caller()
        return
    g.caller, g.via = _caller()
    if request.method in WRITES:
        _guard_write()
    elif g.caller is None and current_app.config["READS_REQUIRE_TOKEN"]:
        raise AuthError("reads need an API token on this server: send 'Authorization: Bearer <token>'")


def _caller() -> tuple[Caller | None, str | None]:
    """From the Authorization header if sent (a bad one is a 401), else from the session cookie."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'", "invalid_request")
        caller = _lookup(tokens.digest(token.strip()))
        if caller is None:
            raise AuthError("the API token is not valid (unknown or revoked)", "invalid_token")
        return caller, "bearer"
    if "token" in session:
        caller = _lookup(session["token"])
        if caller is not None:
            return caller, "cookie"
        session.clear()  # revoked since sign-in: signed out
    return None, None


def _lookup(sha256: str) -> Caller | None:
    with db_session() as s:
        return tokens.authenticate(s, sha256)


def _guard_write() -> None:
    if g.caller is None:
        raise AuthError(f"{request.method} {request.path} needs an API token: send 'Authorization: Bearer <token>' "
                        f"(an admin makes one with `cnnlab tokens create NAME`)")
    if g.via == "cookie" and not (request.headers.get(CSRF_HEADER) or request.mimetype == "application/json"):
        raise APIError(403, f"a write signed in by the session cookie must send the {CSRF_HEADER} header or a JSON "
                            f"body (cross-site request guard)")


def caller() -> Caller:
    """The authenticated caller of a write (the guard has already refused anonymous writes)."""
    if g.get("caller") is None:
        raise AuthError("this needs an API token: send 'Authorization: Bearer <token>'")
    return g.caller


def require_manager(owner: str | None, what: str) -> Caller:
    """The caller, if it may cancel or download `what` (its owner or an admin); 401 or 403 otherwise."""
    who = caller()
    if not who.may_manage(owner):
        raise APIError(403, f"{what} belongs to {owner or 'nobody (made before tokens)'}; only its owner or an "
                            f"admin token may do this")
    return who


def own(s, *, job_ids: list[int] = (), sweep_ids: list[int] = ()) -> None:
    """Record the caller as owner of new jobs/sweeps, then refuse them all if that puts it over its cap."""
    who = caller()
    adding = tokens.claim(s, who.name, job_ids=job_ids, sweep_ids=sweep_ids)
    tokens.check_cap(s, who, current_app.config["MAX_ACTIVE_JOBS"], adding)


def _wants_page() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def _here() -> str:
    return request.full_path.rstrip("?")


def safe_next(raw: str | None) -> str:
    """The target parsed: only a path on this site (no scheme, no host, no //), else "/": no open redirect."""
    if not raw or any(c.isspace() or not c.isprintable() or c == "\\" for c in raw):
        return "/"  # browsers drop tabs and newlines and read a backslash as "/": "/<TAB>/evil" becomes //evil
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return "/"
    return urlunsplit(("", "", parts.path, parts.query, parts.fragment))


def login_form_token() -> str:
    """The sign-in form's token, kept in this browser's session: a cross-site form cannot know it (login CSRF)."""
    return session.setdefault(LOGIN_FORM_FIELD, secrets.token_urlsafe(24))


def _login_form_ok() -> bool:
    sent, kept = request.form.get(LOGIN_FORM_FIELD, ""), session.get(LOGIN_FORM_FIELD, "")
    return bool(kept) and secrets.compare_digest(sent.encode(), kept.encode())


def _unauthorized(exc: AuthError):
    """JSON with the Bearer challenge; a person opening a page or a download link is sent to sign in instead."""
    if request.method == "GET" and _wants_page():
        return redirect(url_for("auth.login", next=_here()))
    body, status = json_error(401, exc.message)
    return body, status, {"WWW-Authenticate": exc.challenge}


@bp.get("/login")
def login():
    """The sign-in form: paste a token once; the page then keeps a signed session cookie."""
    return render_template("login.html", next=safe_next(request.args.get("next")), error=None,
                           form_token=login_form_token())


@bp.post("/login")
def login_post():
    nxt = safe_next(request.form.get("next"))
    if not _login_form_ok():
        return render_template("login.html", next=nxt, form_token=login_form_token(),
                               error="This sign-in form has expired or came from another site: sign in again."), 403
    sha256 = tokens.digest(request.form.get("token", "").strip())
    who = _lookup(sha256)
    if who is None:
        return render_template("login.html", next=nxt, form_token=login_form_token(),
                               error="That token is not valid (unknown or revoked)."), 401
    session.clear()
    session.permanent = True  # kept COOKIE_DAYS days, then asked again
    session["token"] = sha256  # the digest, never the token: revoking it ends this session too
    return redirect(nxt)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Forget the session cookie (the token itself stays valid: `cnnlab tokens revoke` ends it)."""
    session.clear()
    return redirect(url_for("pages.jobs.index"))
