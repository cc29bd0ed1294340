"""A small HTTP client for the cnnlab service (requests): what the `cnnlab` service commands call.

Answers are the API's JSON (the OpenAPI document describes them); failures are `ServiceError` with the API's
message. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from shared.lab.runs import LocalRun

Json = dict[str, Any]
CHUNK = 1 << 20  # bytes per read while downloading a checkpoint


class ServiceError(Exception):
    """The service answered an error (status 4xx/5xx), or could not be reached (status 0)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}" if status else message)
        self.status, self.message = status, message


class CorruptDownload(ServiceError):
    """A downloaded file's sha256 is not the one the service recorded; the file was not kept."""


class Client:
    """One service at `server`; sends `Authorization: Bearer <token>` when a token is given."""

    def __init__(self, server: str, token: str | None = None, timeout: float = 30.0):
        self.server, self.timeout = server.rstrip("/"), timeout
        self.http = requests.Session()
        self.http.headers["Accept"] = "application/json"
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kw) -> requests.Response:
        """The response of a 2xx answer; ServiceError otherwise (the API's error message, or why it is unreachable)."""
        try:
            r = self.http.request(method, self.server + path, timeout=kw.pop("timeout", self.timeout), **kw)
        except requests.ConnectionError:
            raise ServiceError(0, f"cannot reach {self.server} (is the service running? --server or "
                                  f"$CNNLAB_SERVER names it)") from None
        except requests.RequestException as exc:
            raise ServiceError(0, f"{method} {self.server}{path} failed: {type(exc).__name__}") from None
        if r.status_code >= 400:
            raise ServiceError(r.status_code, _message(r))
        return r

    def submit(self, preset: str, overrides: Json, name: str | None = None, priority: int = 0) -> Json:
        body = {"preset": preset, "overrides": overrides, "name": name, "priority": priority}
        return self.request("POST", "/jobs", json=body).json()

    def job(self, job_id: int) -> Json:
        return self.request("GET", f"/jobs/{job_id}").json()

    def jobs(self, **filters) -> Json:
        """One page of GET /jobs; filters left None are not sent."""
        return self.request("GET", "/jobs", params={k: v for k, v in filters.items() if v is not None}).json()

    def cancel(self, job_id: int) -> Json:
        return self.request("POST", f"/jobs/{job_id}/cancel").json()

    def log(self, job_id: int, follow: bool = False) -> Iterator[str]:
        """The job's log as text, piece by piece; with `follow`, until the job ends."""
        params = {"follow": "true"} if follow else {}
        r = self.request("GET", f"/jobs/{job_id}/log", params=params, stream=True, headers={"Accept": "text/plain"},
                         timeout=(self.timeout, None if follow else self.timeout))  # following: no read timeout
        r.encoding = r.encoding or "utf-8"
        with r:
            yield from r.iter_content(chunk_size=None, decode_unicode=True)

    def checkpoints(self, job_id: int) -> list[Json]:
        return self.request("GET", f"/jobs/{job_id}/checkpoints").json()["items"]

    def download(self, url: str, target: Path, sha256: str) -> Path:
        """Stream `url` into `target`, hashing as it goes; a file whose sha256 differs from `sha256` (or from the
        X-Checkpoint-SHA256 header) is removed and refused with CorruptDownload."""
        part = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        with self.request("GET", url.removeprefix(self.server), stream=True) as r, open(part, "wb") as f:
            for chunk in r.iter_content(CHUNK):
                digest.update(chunk)
                f.write(chunk)
            header = r.headers.get("X-Checkpoint-SHA256")
        got = digest.hexdigest()
        if got != sha256 or (header is not None and header != sha256):
            part.unlink()
            raise CorruptDownload(0, f"{url}: sha256 {got[:12]}… is not the recorded {sha256[:12]}…; not kept")
        os.replace(part, target)
        return target

    def record_run(self, run: LocalRun, key: str) -> Json:
        """POST /runs: store a finished local run as a job; a retry with the same `key` finds that job."""
        body = run.model_dump(mode="json")
        return self.request("POST", "/runs", json=body, headers={"Idempotency-Key": key}).json()


def _message(r: requests.Response) -> str:
    """The API's error message, or the start of whatever else it sent."""
    try:
        return r.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return (r.text or r.reason or "").strip()[:300]
