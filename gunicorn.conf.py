"""Gunicorn's settings for the API (`gunicorn -c gunicorn.conf.py 'api:create_app()'`), used by scripts/run.sh and
docker-compose (behind nginx there, which buffers slow clients; deploy/nginx.conf).

Slow clients must not take the API down when no proxy is in front (`make run`): gunicorn's gevent worker gives every
connection a greenlet, not a thread, so a thousand stalled sockets per process cost memory, not service; a request's
line and headers must arrive within `keepalive` seconds in all (gevent.Timeout around the parse, the header-read
deadline), and each read of a body within CNNLAB_CLIENT_TIMEOUT_SECONDS (werkzeug answers a stalled body with a 400)."""

from shared.lab.settings import settings

_s = settings()
bind = [f"127.0.0.1:{_s.port}"]  # this host only; docker-compose binds 0.0.0.0 inside its network
worker_class = "gevent"
workers = _s.api_workers
worker_connections = _s.api_connections  # open client connections per worker process, slow ones included
timeout = 60  # seconds a worker may go silent (a stuck request) before the arbiter restarts it
graceful_timeout = 5  # seconds in-flight requests get on SIGTERM: the API's requests are short
keepalive = 5  # seconds: an idle keep-alive connection is kept, and a request's headers must arrive, this long
limit_request_line = 8190
limit_request_fields = 100
control_socket_disable = True  # gunicorn's control socket is one path per user: two instances would share it


def post_worker_init(worker) -> None:
    """Wrap the app: each client socket gets a read timeout (werkzeug answers a body that stalls with a 400)."""
    app, seconds = worker.wsgi, settings().client_timeout_seconds

    def with_timeout(environ, start_response):
        sock = environ.get("gunicorn.socket")
        if sock is not None:
            sock.settimeout(seconds)
        return app(environ, start_response)

    worker.wsgi = with_timeout
