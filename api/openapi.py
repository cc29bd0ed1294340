"""The OpenAPI 3.1 document: schemas generated from the pydantic models in api/schemas/, one entry per route."""

from __future__ import annotations

from functools import lru_cache

from pydantic.json_schema import models_json_schema

from api.schemas.actions import JobPatch, RunCreate
from api.schemas.errors import Error
from api.schemas.handout import Handout, HandoutRun, HandoutRunOut
from api.schemas.jobs import CheckpointList, JobCreate, JobCsvQuery, JobList, JobOut, JobQuery, Metrics, SystemOut
from api.schemas.logs import LogQuery
from api.schemas.meta import Health, ModelList, PresetList
from api.schemas.queues import QueueOverview
from api.schemas.studies import StudyList, StudyOut, StudyRun
from api.schemas.sweeps import SweepCancel, SweepCreate, SweepList, SweepOut
from shared.lab.seeds import MAX_SEED, MAX_SEEDS
from shared.lab.specs import PRESETS
from shared.store import listing
from shared.store.models import JobStatus

REF = "#/components/schemas/{model}"
RESPONSES = [JobOut, JobList, Metrics, SystemOut, CheckpointList, PresetList, ModelList, Health, Error, SweepOut,
             SweepList, SweepCancel, StudyList, StudyOut, QueueOverview, Handout, HandoutRunOut]
CSV = {"description": "CSV, one row per job", "content": {"text/csv": {"schema": {"type": "string"}}}}


def _json(model: type | None, description: str = "OK") -> dict:
    if model is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}}


def _error(description: str) -> dict:
    return _json(Error, description)


def _id(name: str = "job_id") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0,
                                                                      "maximum": 2**31 - 1}}


def _query(model) -> list[dict]:
    """Query parameters from a pydantic model's fields."""
    props = model.model_json_schema(ref_template=REF)["properties"]
    if "status" in props:
        props["status"] = {"anyOf": [{"type": "string", "enum": [s.value for s in JobStatus]}, {"type": "null"}]}
    return [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in props.items()]


def _schemas() -> dict:
    requests = [(JobCreate, "validation"), (SweepCreate, "validation"), (StudyRun, "validation"),
                (JobPatch, "validation"), (RunCreate, "validation"), (HandoutRun, "validation")]
    pairs = requests + [(m, "serialization") for m in RESPONSES]
    _, top = models_json_schema(pairs, ref_template=REF)
    defs = top["$defs"]
    fields = {k: v for k, v in defs["Spec"]["properties"].items() if k != "seed"}  # a sweep's seeds are `seeds`
    _preset_or_spec(defs["JobCreate"], defs["Spec"]["properties"])
    _preset_or_spec(defs["SweepBase"], fields)
    _grid_or_cells(defs["SweepCreate"], fields)
    _something_to_change(defs["JobPatch"])
    return defs


def _spec_fields(fields: dict, each=lambda schema: schema) -> dict:
    """An object of spec fields (`each` of their schemas) and model_args.<name> keys, nothing else."""
    return {"type": "object", "properties": {k: each(v) for k, v in fields.items()}, "additionalProperties": False,
            "patternProperties": {f"^{listing.MODEL_ARG.pattern}$": each({})}}


def _grid_or_cells(schema: dict, fields: dict) -> None:
    """POST /sweeps (shared/lab/sweeps.py `expand`): grid values or listed cells of spec fields, none repeated."""
    props = schema["properties"]
    grid = _spec_fields(fields, lambda v: {"type": "array", "items": v, "minItems": 1, "uniqueItems": True})
    props["grid"] = {"anyOf": [grid, {"type": "null"}], "default": None, "description": props["grid"]["description"]}
    cells = {"type": "array", "items": _spec_fields(fields), "minItems": 1, "uniqueItems": True}
    props["cells"] = {"anyOf": [cells, {"type": "null"}], "default": None, "description": props["cells"]["description"]}
    seed = {"type": "integer", "minimum": 0, "maximum": MAX_SEED}
    props["seeds"] = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_SEEDS},
                                {"type": "array", "items": seed, "minItems": 1, "maxItems": MAX_SEEDS, "uniqueItems": True}],
                      "default": 3, "description": props["seeds"]["description"]}
    schema["not"] = {"required": ["grid", "cells"], "properties": {"grid": {"type": "object"}, "cells": {"type": "array"}}}


def _preset_or_spec(schema: dict, fields: dict) -> None:
    """What `resolve_checked` takes, said in the schema (the models keep plain dicts, to tell defaults taken):
    a known preset with overrides of spec fields (dotted keys: model_args), or a full spec, not both."""
    props = schema["properties"]
    props["preset"] = {"anyOf": [{"type": "string", "enum": list(PRESETS)}, {"type": "null"}], "default": None,
                       "description": props["preset"].get("description", "")}
    props["spec"] = {"anyOf": [{"$ref": REF.format(model="Spec")}, {"type": "null"}], "default": None,
                     "description": props["spec"].get("description", "")}
    props["overrides"] = {"anyOf": [_spec_fields(fields), {"type": "null"}],
                          "default": None, "description": props["overrides"].get("description", "")}
    schema["anyOf"] = [{"required": ["preset"], "properties": {"preset": {"type": "string"}, "spec": {"type": "null"}}},
                       {"required": ["spec"], "properties": {"spec": {"type": "object"}, "preset": {"type": "null"},
                                                              "overrides": {"type": ["object", "null"], "maxProperties": 0}}}]


def _something_to_change(schema: dict) -> None:
    """PATCH /jobs/<id>: at least one field; only the name may be null (JobPatch's validator)."""
    schema["minProperties"] = 1
    for field in ("tags", "notes", "archived"):
        prop = schema["properties"][field]
        prop.update(next(b for b in prop.pop("anyOf") if b.get("type") != "null"))
        prop.pop("default", None)


def _paths() -> dict:
    return {**_job_paths(), **_job_file_paths(), **_sweep_paths(), **_study_paths(), **_handout_paths(),
            **_meta_paths()}


def _job_paths() -> dict:
    """Submit, list, read and cancel jobs; their metrics and machine use."""
    job = JobOut
    return {
        "/jobs": {
            "post": {"summary": "Submit a job (a preset with overrides, or a full spec)",
                     "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                     "description": "a retry with the same key answers the job it made (200)",
                                     "schema": {"type": "string", "minLength": 1, "maxLength": 200}}],
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": REF.format(model="JobCreate")},
                         "example": {"preset": "mnist-cnn", "overrides": {"train_limit": 2000}}}}},
                     "responses": {"201": _json(job, "Created; Location names the job"),
                                   "200": _json(job, "The job an earlier request with this Idempotency-Key made"),
                                   "409": _error("Idempotency-Key used for another request"), "400": _error("Not JSON"),
                                   "413": _error("Body too large"), "422": _error("Invalid spec"),
                                   "503": _error("Stored, but the broker is unreachable")}},
            "get": {"summary": "List jobs, newest first", "parameters": _query(JobQuery),
                    "responses": {"200": _json(JobList), "422": _error("Bad filter")}}},
        "/jobs/{job_id}": {"get": {"summary": "A job: status, progress, result", "parameters": [_id()],
                                   "responses": {"200": _json(job), "404": _error("Unknown job")}}},
        "/jobs/{job_id}/metrics": {"get": {"summary": "Per-epoch metrics, the training loss every log_every steps, "
                                                      "and test points by samples seen (evals)",
                                           "parameters": [_id()],
                                           "responses": {"200": _json(Metrics), "404": _error("Unknown job")}}},
        "/jobs/{job_id}/system": {"get": {"summary": "The trainer's CPU %, resident memory and GPU use, sampled every "
                                                     "CNNLAB_SYSTEM_SAMPLE_SECONDS, and their mean/peak in the result",
                                          "parameters": [_id()],
                                          "responses": {"200": _json(SystemOut), "404": _error("Unknown job")}}},
        "/jobs/{job_id}/cancel": {"post": {"summary": "Cancel: queued never starts, running stops at a step boundary",
                                           "parameters": [_id()],
                                           "responses": {"202": _json(job), "404": _error("Unknown job"),
                                                         "409": _error("Already finished")}}},
    }


def _job_file_paths() -> dict:
    """A job's log and checkpoints."""
    return {
        "/jobs/{job_id}/log": {"get": {
            "summary": "The job's log so far (text/plain); ?follow=true streams it until the job ends; with "
                       "Accept: text/event-stream, server-sent events: one `data:` per line (`id:` its end offset, "
                       "for Last-Event-ID), then `event: end` with the job's status",
            "parameters": [_id(), *_query(LogQuery)],
            "responses": {"200": {"description": "The log", "content": {
                              "text/plain": {"schema": {"type": "string"}},
                              "text/event-stream": {"schema": {"type": "string"}}}},
                          "404": _error("Unknown job"), "422": _error("Bad query")}}},
        "/jobs/{job_id}/checkpoints": {"get": {"summary": "Checkpoints with sha256", "parameters": [_id()],
                                               "responses": {"200": _json(CheckpointList),
                                                             "404": _error("Unknown job")}}},
        "/jobs/{job_id}/checkpoints/{epoch}": {"get": {
            "summary": "A checkpoint file; X-Checkpoint-SHA256 carries its sha256", "parameters": [_id(), _id("epoch")],
            "responses": {"200": {"description": "The file", "content": {"application/octet-stream": {
                                      "schema": {"type": "string", "format": "binary"}}}},
                          "404": _error("Unknown job or epoch"), "410": _error("File gone from disk, or corrupt")}}},
    }


def _meta_paths() -> dict:
    """The service around the jobs: the queue, the presets, Prometheus metrics, health."""
    return {
        "/queue": {"get": {"summary": "Queues and their depth, the live workers and what each runs, the waiting jobs "
                                      "in order (JSON; the page when a browser asks; ?format=json forces JSON)",
                           "parameters": [{"name": "format", "in": "query", "required": False,
                                           "schema": {"type": "string", "enum": ["json"]}}],
                           "responses": {"200": _json(QueueOverview), "422": _error("Unknown format")}}},
        "/presets": {"get": {"summary": f"The presets ({', '.join(PRESETS)})", "responses": {"200": _json(PresetList)}}},
        "/models": {"get": {"summary": "The nets a spec's `model` may name: the built-in ones and those of the "
                                       "packages CNNLAB_MODEL_PACKAGES allows", "responses": {"200": _json(ModelList)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics: jobs by status and queue, queue depth, retries, "
                                        "job and epoch durations, busy workers' heartbeats",
                             "responses": {"200": {"description": "Prometheus text format",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/healthz": {"get": {"summary": "Database and broker reachable",
                             "responses": {"200": _json(Health, "Healthy"), "503": _json(Health, "Degraded")}}},
    }


def _sweep_paths() -> dict:
    sweep = [_id("sweep_id")]
    example = {"name": "hidden units", "base": {"preset": "mnist-fc", "overrides": {"train_limit": 2000}},
               "grid": {"model_args.n_hidden": [4, 8, 16]}, "seeds": 5}
    return {
        "/sweeps": {
            "post": {"summary": "Create a sweep: one job per grid cell and seed, every cell validated first",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": REF.format(model="SweepCreate")}, "example": example}}},
                     "responses": {"201": _json(SweepOut, "Created; Location names the sweep"),
                                   "400": _error("Not JSON"), "422": _error("A cell's spec is invalid, or too many jobs"),
                                   "503": _error("Stored, but the broker is unreachable")}},
            "get": {"summary": "List sweeps, newest first", "responses": {"200": _json(SweepList)}}},
        "/sweeps/{sweep_id}": {"get": {"summary": "A sweep: status counts and per-cell statistics over the seeds",
                                       "parameters": sweep,
                                       "responses": {"200": _json(SweepOut), "404": _error("Unknown sweep")}}},
        "/sweeps/{sweep_id}/cancel": {"post": {"summary": "Cancel the sweep's queued and running jobs",
                                               "parameters": sweep,
                                               "responses": {"202": _json(SweepCancel), "404": _error("Unknown sweep")}}},
        "/sweeps/{sweep_id}/results.csv": {"get": {
            "summary": "One row per job: swept fields, seed, status, test_accuracy (fraction), test_loss, train_seconds",
            "parameters": sweep, "responses": {"200": CSV, "404": _error("Unknown sweep")}}},
        "/jobs.csv": {"get": {"summary": "Jobs as CSV, with GET /jobs's filters", "parameters": _query(JobCsvQuery),
                              "responses": {"200": CSV, "422": _error("Bad filter")}}},
    }


def _study_paths() -> dict:
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    size = [{"name": "size", "in": "query", "required": False, "schema": {"type": "string", "enum": ["quick", "full"],
                                                                          "default": "quick"}}]
    return {
        "/studies": {"get": {"summary": "The studies: one per question of the lab, with their sizes",
                             "responses": {"200": _json(StudyList)}}},
        "/studies/{name}": {"get": {
            "summary": "A study and the answer drawn from its runs at a size: cells (n, mean, CI), claims' verdicts",
            "parameters": name + size,
            "responses": {"200": _json(StudyOut), "404": _error("Unknown study"), "422": _error("Unknown size")}}},
        "/studies/{name}/run": {"post": {
            "summary": "Run the study at a size with fresh seeds: one sweep",
            "parameters": name, "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": REF.format(model="StudyRun")}, "example": {"seeds": 5, "size": "quick"}}}},
            "responses": {"201": _json(SweepOut, "Created: the sweep, `id` at the top level"),
                          "400": _error("No body, or not a JSON object"),
                          "404": _error("Unknown study"), "422": _error("Unknown size, bad seeds"),
                          "503": _error("Stored, but the broker is unreachable")}}},
    }


def _handout_paths() -> dict:
    query = [{"name": "format", "in": "query", "required": False,
              "schema": {"type": "string", "enum": ["html", "json", "file"], "default": "html"}},
             {"name": "size", "in": "query", "required": False,
              "schema": {"type": "string", "enum": ["quick", "full"], "default": "quick"}}]
    html = {"schema": {"type": "string"}}
    return {
        "/handout": {"get": {
            "summary": "Every question of the lab in its order: its status, the lab's answer and the verdicts from the "
                       "data at a size (?format=json); the page (html) or one self-contained HTML file (file)",
            "parameters": query,
            "responses": {"200": {"description": "The handout", "content": {
                              "application/json": {"schema": {"$ref": REF.format(model="Handout")}},
                              "text/html": html}},
                          "422": _error("Unknown format or size")}}},
        "/handout/run": {"post": {
            "summary": "Run every quick study with the seeds it needs (the handout's plan): one sweep per study",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": REF.format(model="HandoutRun")}, "example": {}}}},
            "responses": {"201": _json(HandoutRunOut, "Queued: the plan followed and the sweeps"),
                          "400": _error("No body, or not a JSON object"), "422": _error("Bad priority, or a study's "
                                                                                      "data is missing"),
                          "503": _error("Stored, but the broker is unreachable")}}},
    }


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "an API token (`cnnlab tokens create NAME`); every write needs one"},
    "session": {"type": "apiKey", "in": "cookie", "name": "session",
                "description": "the pages' signed cookie from /login; a write with it alone must also send "
                               "X-Requested-With or a JSON body"},
}
OPEN = {"/healthz", "/openapi.json"}  # never need a token
MANAGED = {("/jobs/{job_id}/cancel", "post"), ("/jobs/{job_id}/checkpoints/{epoch}", "get"),
           ("/jobs/{job_id}", "patch"), ("/jobs/{job_id}", "delete"),
           ("/sweeps/{sweep_id}/cancel", "post")}  # the owner's or an admin's
CAPPED = {"/jobs", "/sweeps", "/studies/{name}/run", "/handout/run"}  # add queued jobs: the per-token cap applies
TOO_MANY = {"description": "Rate limit passed (Retry-After: seconds), or a write that would pass the token's cap of "
                           "queued + running jobs", "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}


def _secure(paths: dict) -> dict:
    """Each operation's security and its 401/403/429 answers (api/auth.py, api/limits.py)."""
    for path, ops in paths.items():
        if path in OPEN:
            continue
        for method, op in ops.items():
            write = method != "get"
            op["security"] = [{"bearer": []}, {"session": []}] if write else [{}, {"bearer": []}, {"session": []}]
            op["responses"]["401"] = _error("No valid token (WWW-Authenticate: Bearer)" if write else
                                            "No valid token, and reads need one (CNNLAB_READS_REQUIRE_TOKEN)")
            if (path, method) in MANAGED:
                op["responses"]["403"] = _error("The token is neither the owner's nor an admin's")
            elif write:
                op["responses"]["403"] = _error("Cookie-signed write without X-Requested-With or a JSON body")
            op["responses"]["429"] = TOO_MANY if write and path in CAPPED else _error("Rate limit passed (Retry-After)")
    return paths


def _action_paths() -> dict:
    def body(model, example: dict | None = None) -> dict:
        content = {"schema": {"$ref": REF.format(model=model.__name__)}} | ({"example": example} if example else {})
        return {"required": True, "content": {"application/json": content}}

    return {
        "/jobs/{job_id}": {
            "patch": {"summary": "Edit a job's name, tags, notes or archived flag (any status)", "parameters": [_id()],
                      "requestBody": body(JobPatch, {"tags": ["baseline", "week 3"], "notes": "lr too high?"}),
                      "responses": {"200": _json(JobOut, "The updated job"), "404": _error("Unknown job"),
                                    "400": _error("Not JSON"), "422": _error("Unknown field or bad value")}},
            "delete": {"summary": "Delete a finished job with its metrics, result and files (checkpoints, log)",
                       "parameters": [_id()],
                       "responses": {"204": {"description": "Deleted"}, "404": _error("Unknown job"),
                                     "409": _error("Queued or running: cancel it first")}}},
        "/runs": {"post": {
            "summary": "Record a run trained outside the service (`cnnlab train --server`) as a succeeded job "
                       "on the `local` queue",
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "description": "a retry with the same key answers the job it made (200)",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200}}],
            "requestBody": body(RunCreate),
            "responses": {"201": _json(JobOut, "Recorded; Location names the job"),
                          "200": _json(JobOut, "The job an earlier request with this Idempotency-Key made"),
                          "400": _error("Not JSON"), "413": _error("Body too large"),
                          "422": _error("Invalid run")}}},
    }


@lru_cache(maxsize=1)
def document() -> dict:
    paths = _paths()
    for path, operations in _action_paths().items():
        paths.setdefault(path, {}).update(operations)
    return {"openapi": "3.1.0", "info": {"title": "cnnlab", "version": "0.1.0",
                                          "description": "Train the classic CNN lab experiments as jobs."},
            "paths": _secure(paths), "components": {"schemas": _schemas(), "securitySchemes": SECURITY_SCHEMES}}
