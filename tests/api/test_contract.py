"""The OpenAPI document matches the API: a bounded schemathesis run (fixed seed) against the real Flask app.

Every operation gets EXAMPLES valid and EXAMPLES invalid requests (schemathesis's Python API, hypothesis
derandomized); each answer is checked by schemathesis's default checks (documented status, headers and
content type, the body's schema, invalid input refused with a 4xx, no 5xx)."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from support import migrate

from api import create_app

EXAMPLES = 8  # per operation and mode: every operation and its answers in seconds, not a fuzzing campaign


@pytest.fixture
def api_schema(tmp_path, data_root, redis_url, sent):
    """The app on a database of its own (the run creates jobs and sweeps) and a live broker (so /healthz is 200),
    to which nothing is sent (`sent`)."""
    url = f"sqlite:///{tmp_path / 'contract.db'}"
    migrate(url)
    app = create_app({"DATABASE_URL": url, "DATA_DIR": data_root, "BROKER_URL": redis_url})
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def run_operation(operation, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        # A spec can be schema-valid and still not train (a model that does not fit its dataset): that is a 422
        # naming the problem, so "valid data is accepted" is the one default check left out.
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    check()


def test_every_operation_answers_as_documented(api_schema):
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                run_operation(operation, mode)
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
