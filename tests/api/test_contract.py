"""The OpenAPI document matches the API: a bounded schemathesis run (fixed seed) against the real Flask app.

Every operation gets EXAMPLES valid and EXAMPLES invalid requests (schemathesis's Python API, hypothesis
derandomized); each answer is checked by schemathesis's default checks (documented status, headers and
content type, the body's schema, invalid input refused with a 4xx, no 5xx) and valid input accepted (ST202), but
for the 422s listed in RUN_CHECKED. Every request carries an admin token, so the writes are tried, not refused."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from support import admin_token, bearer, migrate

from api import create_app

EXAMPLES = 8  # per operation and mode: every operation and its answers in seconds, not a fuzzing campaign


@pytest.fixture
def api_schema(tmp_path, data_root, redis_url, sent):
    """The app on a database of its own (the run creates jobs and sweeps) and a live broker (so /healthz is 200),
    to which nothing is sent (`sent`)."""
    url = f"sqlite:///{tmp_path / 'contract.db'}"
    migrate(url)
    app = create_app({"DATABASE_URL": url, "DATA_DIR": data_root, "BROKER_URL": redis_url})
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    schema.headers = bearer(admin_token(url))  # writes are tried, not all refused 401 (test_auth.py: without one)
    schema.config.checks.negative_data_rejection.expected_statuses.append("413")  # a body over 64 KiB: documented
    return schema


def run_operation(operation, mode: GenerationMode, headers: dict) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(headers=headers)
        case.validate_response(response, excluded_checks=[positive_data_acceptance], headers=headers)
        if mode == GenerationMode.POSITIVE:
            accepted_unless_it_cannot_run(response)

    check()


# What a schema cannot promise: a dataset that is not there, a model that does not fit its dataset or its queue's
# memory, rules across fields (finished before started, an epoch recorded twice). A schema-valid request refused
# for anything else is a failure (ST202), as schemathesis's positive_data_acceptance would report it.
RUN_CHECKED = {"dataset", "model_args", "mean", "std", "memory_gb", "spec", "world_size", "finished_at", "epochs",
               "steps", "url"}  # url: notify's host must be one the admin allows (CNNLAB_NOTIFY_HOSTS)


def accepted_unless_it_cannot_run(response) -> None:
    if response.status_code not in (400, 422) and response.status_code < 500:
        return
    fields = {d["field"].split(".")[-1] for d in response.json()["error"].get("details") or [{"field": "?"}]}
    assert response.status_code == 422 and fields <= RUN_CHECKED, (
        f"schema-valid request refused: {response.request.method} {response.request.url} "
        f"{response.request.body!r} -> {response.status_code} {response.text[:500]}")


def test_every_operation_answers_as_documented(api_schema):
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                run_operation(operation, mode, api_schema.headers)
            except Unsatisfiable:  # no parameters and no body: nothing to make invalid
                assert mode == GenerationMode.NEGATIVE, operation
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - one run reports every failing operation
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


def test_an_undocumented_method_is_a_405_naming_the_documented_ones(tmp_path, data_root, sent):
    url = f"sqlite:///{tmp_path / 'contract.db'}"
    migrate(url)
    client = create_app({"DATABASE_URL": url, "DATA_DIR": data_root, "BROKER_URL": "redis://127.0.0.1:1/0"}).test_client()
    paths = client.get("/openapi.json").get_json()["paths"]
    for path, ops in paths.items():
        concrete = path.replace("{job_id}", "1").replace("{sweep_id}", "1").replace("{study_id}", "1")
        concrete = re.sub(r"\{[a-z_]+\}", "1", concrete)
        documented = {m.upper() for m in ops if m in ("get", "post", "put", "patch", "delete")}
        method = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in documented)
        r = client.open(concrete, method=method)
        assert r.status_code == 405, (method, path, r.status_code)
        allowed = {m.strip() for m in r.headers["Allow"].split(",")} - {"HEAD", "OPTIONS"}
        assert allowed == documented, (path, allowed, documented)
        assert r.get_json()["error"]["status"] == 405
